"""The sandbox WhatsApp network: a local server the unmodified whatsmeow client talks to.

No machine here can reach WhatsApp, so gowa-py carries its own. Workers in sandbox mode
point neonize at it with three switches (:mod:`.redirect`): the sandbox URL as
HTTP proxy, the sandbox CA in ``SSL_CERT_FILE``, and the sandbox Noise root key patched
over whatsmeow's ``WACertPubKey`` in memory. Everything else is the real client.

Layers, outside in (one module each):

* :mod:`.transport` - one loopback port: ``CONNECT web.whatsapp.com:443`` is answered
  as a proxy whose TLS the sandbox terminates itself (CA from :mod:`.certs`), then the
  websocket and WhatsApp's ``len24`` framing; other requests go to :mod:`.api`.
* :mod:`.noise` - the Noise XX handshake (responder) with the certificate chain from
  :mod:`.certs`, then per-direction AES-GCM frame ciphers.
* :mod:`.binary` - WABinary node codec, with token tables from :mod:`.tokens` (read out
  of the installed neonize library) and JIDs from :mod:`.jid`.
* :mod:`.connection` - ordered, optionally delayed encrypted node I/O per client.
* :mod:`.server` - :class:`~.server.SimServer`: accepts connections and dispatches
  stanzas to :mod:`.pairing` (QR refs, the phone's scan, ``pair-success``, 515) and
  :mod:`.paircode` (pairing-code login),
  :mod:`.login`, :mod:`.iq` (every iq is answered; unknown ones with 501) with
  :mod:`.usync`, :mod:`.prekeys` and :mod:`.groups`, :mod:`.routing` (1:1 fan-out,
  retries, offline queue), :mod:`.receipts` and :mod:`.presence`.
* :mod:`.network` - shared state: who is online, delivery or queueing, unlinking.
* :mod:`.store` - SQLite (``sim.db``): phones, devices, prekeys, queued stanzas, groups.
* :mod:`.phone` - the simulated primary phone that signs companion identities;
  :mod:`.devicezero` - the phone as a Signal sender (device 0), which shares the
  app-state key with each new companion, encrypted by :mod:`.x3dh`; :mod:`.appstate`
  stores and serves app-state patches (:mod:`.appstatestore`), and the phone makes its
  own (archive, pin, mute: :mod:`.phonepatches`).
* :mod:`.contacts` / :mod:`.agent` - simulated contacts are real neonize clients the
  sandbox runs and links itself, so what they send is genuinely encrypted.

The sandbox only stores and forwards ciphertext; all end-to-end encryption is done by
the clients, and by the simulated phone for what it sends its own companions. See
``docs/sandbox.md`` for the API and the list of supported stanzas.
"""
