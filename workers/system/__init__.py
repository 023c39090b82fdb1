"""What a worker asks of the operating system: its confinement (uid, Landlock, memory
ceiling), ``prctl`` settings (same-page merging, timer slack) and how its SQLite store
sits on disk. The zygote applies the inherited ones once for all the workers it forks."""
