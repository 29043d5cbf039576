/**
 * The console's words in Italian and English. The language comes from the `avviso_lang` cookie
 * (set by the switch in the header), else the browser's Accept-Language, else Italian.
 */
import type { FastifyRequest } from 'fastify';

export type Lang = 'it' | 'en';

const en = {
  appTitle: 'Avviso console',
  now: 'Now', network: 'Network', incidents: 'Incidents', maintenance: 'Maintenance', subscribers: 'Subscribers', rules: 'Rules', billing: 'Billing', keys: 'API keys',
  signIn: 'Sign in', signOut: 'Sign out', apiKey: 'API key', signInHelp: 'Sign in with your Avviso API key (viewer, operator or admin). It is checked once; the browser then keeps a signed session cookie, not the key.',
  badKey: 'That key was not accepted', signedInAs: 'Signed in as',
  openIncidents: 'Open incidents', maintenances: 'Maintenance under way or coming', noOpenIncidents: 'No open incidents.', noMaintenances: 'No maintenance scheduled or under way.',
  sites: 'Sites', areas: 'Areas', phase: 'Phase', age: 'Age', severity: 'Severity', title: 'Title', opened: 'Opened', progress: 'Messages', window: 'Window', starts: 'Starts', ends: 'Ends',
  planned: 'planned', sent: 'sent', delivered: 'delivered', failed: 'failed', held: 'held',
  updatedEvery: 'Updates itself every 5 seconds.',
  site: 'Site', state: 'State', kind: 'Kind', paying: 'Paying subscribers', payingBelow: 'on it and below', normal: 'normal', down: 'down', underMaintenance: 'under maintenance',
  openIncident: 'Open an incident', openIncidentOn: 'Open an incident on this site', open: 'Open',
  timeline: 'Timeline', affectedSites: 'Affected sites', deliveries: 'Deliveries', search: 'Search', searchHelp: 'phone number or contract', whyNot: 'Why not sent',
  actions: 'Actions', update: 'Post an update', updateText: 'Text for the status page', newEstimate: 'New estimated restoration (local time)', resolve: 'Resolve', cancel: 'Cancel (false alarm)', escalate: 'Escalate to staff now', acknowledge: 'Acknowledge the escalation (I am on it)', acknowledgedBy: 'Escalation acknowledged by', escalationProblems: 'Escalation not sent as planned',
  reason: 'Reason', note: 'Note', send: 'Send', noDeliveries: 'No messages match.', recipient: 'Recipient', contract: 'Contract', channel: 'Channel', attempts: 'Attempts', lastChange: 'Last change',
  schedule: 'Schedule maintenance', preview: 'Preview: who is told, when', reschedule: 'Reschedule', complete: 'Report completed', cancelMaintenance: 'Call off', description: 'Description', startsAt: 'Starts (local time)', endsAt: 'Ends (local time)',
  siteIdsHelp: 'site ids, separated by commas or spaces',
  findSubscriber: 'Find a subscriber', phoneOrContract: 'Phone number or contract', noSubscriber: 'No subscriber found.', option: 'SMS option', optedOut: 'Opted out', yes: 'yes', no: 'no', messagesSent: 'Messages', language: 'Language', segment: 'Segment', name: 'Name',
  rulesInForce: 'Rules in force', version: 'Version', loaded: 'Loaded', files: 'Files', check: 'Check rules', checkHelp: 'Paste a main rule file (includes are read from the rules folder); nothing is loaded.',
  explain: 'Explain for a subscriber', simulate: 'Simulate an incident on a site', ok: 'No errors', errors: 'Errors', warnings: 'Warnings', run: 'Run',
  month: 'Month', report: 'Report', invoiceCsv: 'Invoice lines (CSV)', notBilled: 'This month has not been billed yet.',
  createKey: 'Create a key', revoke: 'Revoke', role: 'Role', created: 'Created', lastUsed: 'Last used', revoked: 'Revoked', keyShownOnce: 'The new key, shown this once:',
  forbidden: 'Your key cannot do this', forbiddenHelp: 'This needs a key with role', notFound: 'Not found', done: 'Done', refused: 'Refused', viewerNote: 'Read only: your viewer key shows everything but no actions.',
  csrfRefused: 'This form has expired or did not come from the console; reload the page and try again.',
  sessionExpired: 'Please sign in.',
  alsoSms: 'Also send the text as SMS to paying subscribers', smsAreas: 'Only these areas (none: all)', smsPreview: 'Preview SMS (sends nothing)',
  smsPreviewTitle: 'SMS preview', smsRecipients: 'Recipients', smsParts: 'SMS parts per message', smsCost: 'Cost', backToIncident: 'Back to the incident',
} as const;

export type Words = { [K in keyof typeof en]: string };

const it: Words = {
  appTitle: 'Console Avviso',
  now: 'Adesso', network: 'Rete', incidents: 'Incidenti', maintenance: 'Manutenzioni', subscribers: 'Abbonati', rules: 'Regole', billing: 'Fatturazione', keys: 'Chiavi API',
  signIn: 'Accedi', signOut: 'Esci', apiKey: 'Chiave API', signInHelp: 'Accedi con la tua chiave API di Avviso (viewer, operator o admin). Viene verificata una volta; il browser conserva poi un cookie di sessione firmato, non la chiave.',
  badKey: 'Chiave non accettata', signedInAs: 'Accesso come',
  openIncidents: 'Incidenti aperti', maintenances: 'Manutenzioni in corso o in arrivo', noOpenIncidents: 'Nessun incidente aperto.', noMaintenances: 'Nessuna manutenzione programmata o in corso.',
  sites: 'Siti', areas: 'Zone', phase: 'Fase', age: 'Da', severity: 'Gravità', title: 'Titolo', opened: 'Aperto', progress: 'Messaggi', window: 'Finestra', starts: 'Inizio', ends: 'Fine',
  planned: 'pianificati', sent: 'inviati', delivered: 'consegnati', failed: 'falliti', held: 'trattenuti',
  updatedEvery: 'Si aggiorna da sola ogni 5 secondi.',
  site: 'Sito', state: 'Stato', kind: 'Tipo', paying: 'Abbonati paganti', payingBelow: 'sul sito e a valle', normal: 'normale', down: 'guasto', underMaintenance: 'in manutenzione',
  openIncident: 'Apri un incidente', openIncidentOn: 'Apri un incidente su questo sito', open: 'Apri',
  timeline: 'Cronologia', affectedSites: 'Siti coinvolti', deliveries: 'Consegne', search: 'Cerca', searchHelp: 'numero di telefono o contratto', whyNot: 'Perché non inviato',
  actions: 'Azioni', update: 'Pubblica un aggiornamento', updateText: 'Testo per la pagina di stato', newEstimate: 'Nuova stima di ripristino (ora locale)', resolve: 'Risolvi', cancel: 'Annulla (falso allarme)', escalate: 'Avvisa subito il personale', acknowledge: "Prendi in carico l'escalation", acknowledgedBy: 'Escalation presa in carico da', escalationProblems: 'Escalation non inviata come previsto',
  reason: 'Motivo', note: 'Nota', send: 'Invia', noDeliveries: 'Nessun messaggio corrisponde.', recipient: 'Destinatario', contract: 'Contratto', channel: 'Canale', attempts: 'Tentativi', lastChange: 'Ultima modifica',
  schedule: 'Programma una manutenzione', preview: 'Anteprima: chi viene avvisato, quando', reschedule: 'Sposta', complete: 'Segna come completata', cancelMaintenance: 'Annulla', description: 'Descrizione', startsAt: 'Inizio (ora locale)', endsAt: 'Fine (ora locale)',
  siteIdsHelp: 'id dei siti, separati da virgole o spazi',
  findSubscriber: 'Trova un abbonato', phoneOrContract: 'Numero di telefono o contratto', noSubscriber: 'Nessun abbonato trovato.', option: 'Opzione SMS', optedOut: 'Disiscritto', yes: 'sì', no: 'no', messagesSent: 'Messaggi', language: 'Lingua', segment: 'Segmento', name: 'Nome',
  rulesInForce: 'Regole in vigore', version: 'Versione', loaded: 'Caricate', files: 'File', check: 'Verifica le regole', checkHelp: 'Incolla un file di regole principale (gli include si leggono dalla cartella delle regole); non viene caricato nulla.',
  explain: 'Spiega per un abbonato', simulate: 'Simula un incidente su un sito', ok: 'Nessun errore', errors: 'Errori', warnings: 'Avvertenze', run: 'Esegui',
  month: 'Mese', report: 'Rapporto', invoiceCsv: 'Righe di fattura (CSV)', notBilled: 'Questo mese non è ancora stato fatturato.',
  createKey: 'Crea una chiave', revoke: 'Revoca', role: 'Ruolo', created: 'Creata', lastUsed: 'Ultimo uso', revoked: 'Revocata', keyShownOnce: 'La nuova chiave, mostrata solo ora:',
  forbidden: 'La tua chiave non lo consente', forbiddenHelp: 'Serve una chiave con ruolo', notFound: 'Non trovato', done: 'Fatto', refused: 'Rifiutato', viewerNote: 'Sola lettura: con una chiave viewer vedi tutto ma nessuna azione.',
  csrfRefused: 'Il modulo è scaduto o non viene dalla console; ricarica la pagina e riprova.',
  sessionExpired: 'Accedi per continuare.',
  alsoSms: 'Invia il testo anche via SMS agli abbonati paganti', smsAreas: 'Solo queste zone (nessuna: tutte)', smsPreview: 'Anteprima SMS (non invia nulla)',
  smsPreviewTitle: 'Anteprima SMS', smsRecipients: 'Destinatari', smsParts: 'Parti SMS per messaggio', smsCost: 'Costo', backToIncident: "Torna all'incidente",
};

const WORDS: Record<Lang, Words> = { it, en };

export const LANG_COOKIE = 'avviso_lang';

export function langOf(req: FastifyRequest): Lang {
  const chosen = req.cookies?.[LANG_COOKIE];
  if (chosen === 'it' || chosen === 'en') return chosen;
  const accept = String(req.headers['accept-language'] ?? '').toLowerCase();
  const first = accept.split(',').map((p) => p.trim().slice(0, 2)).find((l) => l === 'it' || l === 'en');
  return first ?? 'it';
}

export function words(lang: Lang): Words {
  return WORDS[lang];
}

/** Dates as the NOC reads them: Italian time, in the page's language. */
export function formatTime(d: Date | string | undefined, lang: Lang): string {
  if (!d) return '-';
  return new Date(d).toLocaleString(lang === 'it' ? 'it-IT' : 'en-GB', { timeZone: 'Europe/Rome', dateStyle: 'short', timeStyle: 'short' });
}

export function formatAge(from: Date | string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - new Date(from).getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
