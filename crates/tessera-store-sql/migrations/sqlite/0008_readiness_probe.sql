-- One row that readiness (`/readyz`) rewrites: a store that cannot write (disk full,
-- read-only) is not ready, though it may still answer reads.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY,
    probes BIGINT NOT NULL
);
