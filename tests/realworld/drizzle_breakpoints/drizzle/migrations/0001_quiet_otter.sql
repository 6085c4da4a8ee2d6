ALTER TABLE `accounts` ADD `display_name` text;--> statement-breakpoint
CREATE INDEX `sessions_account_idx` ON `sessions` (`account_id`);
