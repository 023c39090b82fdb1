"""GoWA v9 compatibility: ``routing`` serves every route and finds its session,
``operation`` turns a request into an operation for the worker, one module per GoWA tag
(``app``, ``user``, ``send``, ``message``, ``chat``, ``group``, ``newsletter``) declares
its routes, and ``devices`` serves GoWA's ``/devices`` on the same sessions."""
