"""Moving a session between gateways (an archive of one session) and backing up a whole
data dir, both built on SQLite's online backup API (``sqlite.copy_database``)."""
