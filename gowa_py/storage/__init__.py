"""Storage: the schema of each database, its migrations, and the interfaces callers use.

Each database has one schema owner here (``registry_schema`` for ``gowa.db``,
``chats_schema`` for a session's ``chats.db``); the classes that read and write the tables
never create them. ``interfaces`` holds the typing.Protocol classes the gateway, the
supervisor and the worker depend on, and ``factory`` chooses the implementation.
"""
