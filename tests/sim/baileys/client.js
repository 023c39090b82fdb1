// An unmodified Baileys client against the sandbox, driven by a test over stdio.
//
// node client.js AUTH_DIR PROXY_URL   (the sandbox's CA in NODE_EXTRA_CA_CERTS)
//
// It dials wss://web.whatsapp.com/ws/chat through the sandbox (an HTTP CONNECT proxy,
// as for whatsmeow) and prints one JSON object per line: {"qr"}, {"open"}, {"history"},
// {"message"}, {"sent"}, {"closed"}. Each stdin line {"to", "text"} sends a text message.
'use strict'

const readline = require('node:readline')
const util = require('node:util')
const { HttpsProxyAgent } = require('https-proxy-agent')
const pino = require('pino')
const {
  default: makeWASocket,
  DisconnectReason,
  useMultiFileAuthState,
} = require('baileys')

const [authDir, proxyUrl] = process.argv.slice(2)
const agent = new HttpsProxyAgent(proxyUrl)
const logger = pino({ level: process.env.BAILEYS_LOG || 'silent' }, pino.destination(2))
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
// stdout carries only those lines: libsignal logs with console.* (its session notices)
for (const name of ['log', 'info', 'debug', 'warn']) {
  console[name] = (...args) => process.stderr.write(util.format(...args) + '\n')
}

let sock = null

async function connect () {
  const { state, saveCreds } = await useMultiFileAuthState(authDir)
  sock = makeWASocket({
    auth: state,
    agent,
    fetchAgent: agent,
    options: { httpsAgent: agent, proxy: false },
    logger,
    browser: ['gowa-py test', 'Chrome', '1.0'],
    markOnlineOnConnect: false,
    syncFullHistory: false,
  })
  sock.ev.on('creds.update', saveCreds)
  sock.ev.on('connection.update', ({ connection, qr, lastDisconnect }) => {
    if (qr) emit({ qr })
    if (connection === 'open') emit({ open: sock.user.id })
    if (connection === 'close') {
      const code = lastDisconnect?.error?.output?.statusCode
      // after pairing WhatsApp closes the stream with 515: log in with the new creds
      if (code === DisconnectReason.restartRequired) {
        connect()
      } else {
        emit({ closed: code ?? null, error: String(lastDisconnect?.error ?? '') })
      }
    }
  })
  sock.ev.on('messaging-history.set', ({ chats }) => emit({ history: chats.length }))
  sock.ev.on('messages.upsert', ({ messages }) => {
    for (const m of messages) {
      const text = m.message?.conversation ?? m.message?.extendedTextMessage?.text
      if (!m.key.fromMe && text) {
        emit({ message: { from: m.key.remoteJid, participant: m.key.participant, text, id: m.key.id } })
      }
    }
  })
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { to, text } = JSON.parse(line)
  try {
    const sent = await sock.sendMessage(to, { text })
    emit({ sent: sent.key.id })
  } catch (error) {
    emit({ error: String(error) })
  }
}).on('close', () => process.exit(0))

connect()
