"""The program that runs one WhatsApp session: neonize client, SQLite files, sockets."""
