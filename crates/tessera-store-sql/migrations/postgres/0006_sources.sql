-- Where each client and user comes from (`config`, `cli`; later `admin`, `dynamic`):
-- a start removes only what the configuration file declared and no longer declares.
-- Clients were only ever written from the file. Users may come from `tessera users
-- add`, so existing ones count as `cli` (never removed by the file) until the next
-- start writes the file's own users back as `config`.
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'cli';
