"""Team mode: a shared PostgreSQL database with roles and row-level security, reading projects with blinded reads, adjudicated final labels."""
