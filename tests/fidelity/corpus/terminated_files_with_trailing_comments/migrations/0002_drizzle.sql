CREATE TABLE b (x);
--> statement-breakpoint
CREATE INDEX b_x ON b (x);
--> statement-breakpoint
