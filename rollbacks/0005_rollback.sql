-- Rollback for 0005_create_control_overview
DROP VIEW IF EXISTS control_overview;
