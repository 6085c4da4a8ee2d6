-- Migration: 0005_create_control_overview
-- One row per organization: how many controls are in each status.

CREATE VIEW IF NOT EXISTS control_overview AS
SELECT o.id AS organization_id,
       o.name AS organization,
       count(c.id) AS controls,
       sum(c.status = 'tested') AS tested,
       max(c.last_reviewed_at) AS last_review
FROM organizations o
LEFT JOIN security_controls c ON c.organization_id = o.id
GROUP BY o.id;
