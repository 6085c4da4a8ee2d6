-- Rollback for 0001_create_organizations
DROP INDEX IF EXISTS idx_users_organization;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS organizations;
