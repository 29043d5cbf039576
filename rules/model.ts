/**
 * The checked, compiled form of a rule set: what compile.ts produces and the evaluator,
 * explain and simulate read. Every part remembers where it was written.
 */
import type { Liquid } from 'liquidjs';
import type { Condition } from './conditions';
import type { SourcePosition } from './errors';
import type { FactCatalog } from './facts';
import type { CompiledTemplate } from './templates';
import type { AtOnceSettings } from './night';
import type { TimeWindow } from './time';
import type { Channel, FallbackChannel, MessageKind, Priority, Severity, StaffChannel } from './types';

export interface GlobalSettings {
  /**
   * `defaults.delivery`, how the delivery watchdog treats a message not delivered; null where the
   * rules say nothing (the configured delivery policy applies): how long a receipt may take, the
   * sends per channel, and the channels to fall back to, in order.
   */
  delivery: { receiptTimeoutSeconds: number | null; attempts: number | null; fallback: FallbackChannel[] | null };
  /** `defaults.groupWait` in seconds (0: none): a new outage waits this long before planning its first notices. */
  groupWaitSeconds: number;
  timeZone: string;
  senderId: string;
  /** The language of subscribers whose own language the rules do not have. */
  language: string;
  languages: string[];
  /** The template set of notices that do not name one. */
  defaultTemplateSet: string;
  sms: {
    maxParts: number;
    transliterate: boolean;
    costPerPart: number;
    currency: string;
    longest: Record<string, string | number>;
  };
  voice: { costPerCall: number };
}

export interface NotifyTarget {
  channel: Channel;
  templateSet: string;
  priority: Priority;
  at: SourcePosition;
}

/** The settings in force at a rule, after inheriting from `defaults` and enclosing groups. */
export interface RuleSettings {
  notify: NotifyTarget[];
  graceSeconds: number;
  restoration: boolean;
  updates: { everySeconds: number | null; onEtaChange: boolean };
  /** Null: no quiet hours. */
  quietHours: {
    window: TimeWindow | null;
    unlessSeverity: Severity | null;
    atOnce: AtOnceSettings;
    subscriberPreference: boolean;
  } | null;
  /** `reminderBeforeSeconds`: the earliest reminder (kept for those who read one); `remindersBeforeSeconds`: all, earliest first. */
  maintenance: {
    noticeBeforeSeconds: number;
    reminderBeforeSeconds: number | null;
    remindersBeforeSeconds: number[];
    started: boolean;
    completed: boolean;
  };
}

export interface EscalationModel {
  afterSeconds: number;
  contact: string;
  channel: StaffChannel;
  repeat: { everySeconds: number; times: number } | null;
  templateSet: string;
  priority: Priority;
  at: SourcePosition;
}

export interface RuleNode {
  name: string;
  description?: string;
  at: SourcePosition;
  depth: number;
  /** Own condition; undefined matches always. */
  when?: Condition;
  /** The conditions of the enclosing groups and its own, all of which must hold. */
  chain: Condition[];
  settings: RuleSettings;
  escalate: EscalationModel[];
  /** A group (with children) sends nothing itself: its children inherit its condition and settings. */
  children: RuleNode[];
  /** Whether later siblings are still considered once this rule applied. Not inherited. */
  continue: boolean;
  /** Whether any condition in the chain reads a subscriber fact. */
  readsSubscriber: boolean;
}

export interface Contact {
  name: string;
  phone?: string;
  email?: string;
  url?: string;
  at: SourcePosition;
}

export interface TemplateSetModel {
  name: string;
  at: SourcePosition;
  /** Texts by kind and language, inherited ones (`extends`) included. */
  texts: Map<MessageKind, Map<string, CompiledTemplate>>;
}

export interface CompiledRules {
  settings: GlobalSettings;
  holidays: Set<string>;
  contacts: Map<string, Contact>;
  templateSets: Map<string, TemplateSetModel>;
  /** The rule tree, in order. */
  roots: RuleNode[];
  /** Rules without children, in order: each is one json-rules-engine rule. */
  leaves: RuleNode[];
  facts: FactCatalog;
  /** The subscriber facts some condition reads: the key that evaluations are grouped on. */
  subscriberFactsRead: string[];
  liquid: Liquid;
}

export function allNodes(roots: RuleNode[]): RuleNode[] {
  return roots.flatMap((r) => [r, ...allNodes(r.children)]);
}
