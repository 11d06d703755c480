-- 5: the sync API's own indexes.

-- The admin console lists a device's conflicts; uploads look conflicts up by scan.
CREATE INDEX scan_conflicts_by_device ON scan_conflicts(device_id, detected_at);
CREATE INDEX scan_conflicts_by_scan ON scan_conflicts(scan_id);
