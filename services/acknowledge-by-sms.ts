/**
 * A staff contact acknowledges an escalation by replying to its SMS with the code it carries
 * ("OK 123456"). Only a staff number counts (a stored contact's, `/v1/contacts`, or a rules contact's); the code names the
 * open outage or the overrunning maintenance (it follows from the id: domain/acknowledgement.ts).
 */
import type { Store } from '../store/db';
import type { Contact, Language, MaintenancePhase } from '../domain/types';
import { acknowledgementCode, type Acknowledgement } from '../domain/acknowledgement';
import { OPEN_OUTAGE_PHASES } from '../store/coverage';
import type { IncidentService } from './incidents';
import { IncidentInputError } from './incidents';
import { MaintenanceInputError, maintenanceEscalated, type MaintenanceService } from './maintenances';

export type SmsAcknowledgement =
  | { outcome: 'acknowledged' | 'already'; incidentId: string; acknowledged: Acknowledgement }
  | { outcome: 'unknown_code' | 'closed'; incidentId?: string };

/** What an acknowledgement goes through: the outage's service, or the maintenance's. */
export interface AcknowledgingServices {
  incidents: Pick<IncidentService, 'acknowledge'>;
  maintenances: Pick<MaintenanceService, 'acknowledge'>;
}

/** Maintenance the work of which is still under way: an overrun escalates to staff. */
const ESCALATING_MAINTENANCE_PHASES: MaintenancePhase[] = ['in_progress', 'overrun'];

/** Who replied: a stored contact, or one the rules name. */
export type StaffMember = Pick<Contact, '_id' | 'name' | 'language'>;

/** The staff member who owns this number: a stored contact (a person before a team), else a contact of the rules in force. */
export async function staffContactByPhone(
  store: Store,
  phone: string,
  rulesContacts?: ReadonlyMap<string, { name: string; phone?: string }>,
): Promise<StaffMember | null> {
  const found = await store.contacts.find({ phones: phone }).sort({ kind: 1, _id: 1 }).limit(1).toArray();
  if (found[0]) return found[0];
  for (const [id, c] of rulesContacts ?? []) if (c.phone === phone) return { _id: id, name: c.name, language: 'it' };
  return null;
}

/** The open outage or the escalating maintenance whose code this is. */
async function escalationWithCode(
  store: Store,
  code: string,
): Promise<{ _id: string; kind: 'outage' | 'maintenance' } | undefined> {
  // Open outages and maintenances under way are few (dozens at most): the code is computed for each rather than stored.
  const open = await store.incidents
    .find(
      {
        $or: [
          { kind: 'outage', phase: { $in: OPEN_OUTAGE_PHASES }, resolveRequestedAt: { $exists: false } },
          { kind: 'maintenance', phase: { $in: ESCALATING_MAINTENANCE_PHASES }, completedAt: { $exists: false } },
        ],
      },
      { projection: { _id: 1, kind: 1, phase: 1, 'timeline.event': 1 } },
    )
    .toArray();
  const found = open.find(
    (i) => acknowledgementCode(i._id) === code && (i.kind === 'outage' || maintenanceEscalated(i)),
  );
  return found && { _id: found._id, kind: found.kind === 'maintenance' ? 'maintenance' : 'outage' };
}

export async function acknowledgeBySms(
  store: Store,
  services: AcknowledgingServices,
  contact: StaffMember,
  code: string,
): Promise<SmsAcknowledgement> {
  const incident = await escalationWithCode(store, code);
  if (!incident) return { outcome: 'unknown_code' };
  const who = { by: contact.name, via: 'sms' as const, contactId: contact._id };
  try {
    const r =
      incident.kind === 'maintenance'
        ? await services.maintenances.acknowledge(incident._id, who, 'signal')
        : await services.incidents.acknowledge(incident._id, who, 'signal');
    return {
      outcome: r.alreadyAcknowledged ? 'already' : 'acknowledged',
      incidentId: incident._id,
      acknowledged: r.acknowledged,
    };
  } catch (err) {
    if (err instanceof IncidentInputError || err instanceof MaintenanceInputError)
      return { outcome: 'closed', incidentId: incident._id };
    throw err;
  }
}

function clock(d: Date, language: Language): string {
  return d.toLocaleTimeString(language === 'it' ? 'it-IT' : 'en-GB', {
    timeZone: 'Europe/Rome',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** The answer to the contact, in their language. */
export function acknowledgementReplyText(r: SmsAcknowledgement, code: string, language: Language): string {
  const it = language === 'it';
  switch (r.outcome) {
    case 'acknowledged':
      return it
        ? `Presa in carico registrata (${code}): l'escalation si ferma. Grazie.`
        : `Acknowledged (${code}): the escalation stops. Thank you.`;
    case 'already':
      return it
        ? `Già preso in carico da ${r.acknowledged.by} alle ${clock(r.acknowledged.at, language)} (${code}).`
        : `Already taken by ${r.acknowledged.by} at ${clock(r.acknowledged.at, language)} (${code}).`;
    case 'closed':
      return it
        ? `L'escalation ${code} è già in chiusura: niente da prendere in carico.`
        : `Escalation ${code} is already being closed: nothing to acknowledge.`;
    case 'unknown_code':
      return it
        ? `Nessun guasto aperto o manutenzione in ritardo con codice ${code}.`
        : `No open outage or overrunning maintenance has code ${code}.`;
  }
}
