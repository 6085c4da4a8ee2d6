CREATE TABLE a (x);--> statement-breakpoint
CREATE TABLE b (y)