/**
 * The rule tools over HTTP: what is loaded, check a file before it goes live, explain one
 * decision, simulate an incident, reload. Explain and simulate take the facts in the body, so
 * they work on any incident, real or imagined; `audience`, when the app provides it, lets
 * simulate read the real subscribers of the sites instead.
 */
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, errorSchema } from '../errors';
import { staffChannelsFromEnv } from '../../config';
import { checkRulesHere, type StoredContact } from '../../rules/escalation-check';
import {
  syntheticSubscribers,
  type IncidentFacts,
  type RuleSet,
  type RulesHolder,
  type SubscriberFacts,
} from '../../rules';

export interface RulesRoutesOptions {
  rules: RulesHolder;
  /** The real subscribers of an incident's sites (counted as `incident.subscribers`); without it, simulate needs subscribers or a population in the body. */
  audience?: (incident: IncidentFacts) => Promise<SubscriberFacts[]>;
  /** The stored staff contacts (`/v1/contacts`): the check warns of escalations in areas where none is on call. */
  storedContacts?: () => Promise<StoredContact[]>;
}

const time = { type: 'string', format: 'date-time' } as const;

const problem = {
  type: 'object',
  properties: {
    file: { type: 'string' },
    line: { type: 'integer' },
    column: { type: 'integer' },
    severity: { type: 'string', enum: ['error', 'warning'] },
    message: { type: 'string' },
  },
} as const;

const incidentFacts = {
  type: 'object',
  required: ['kind', 'severity', 'siteIds'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', maxLength: 100 },
    kind: { type: 'string', enum: ['outage', 'maintenance'] },
    severity: { type: 'string', enum: ['minor', 'major', 'critical'] },
    siteIds: { type: 'array', minItems: 1, maxItems: 5000, items: { type: 'string', minLength: 1, maxLength: 100 } },
    areas: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 200 } },
    source: { type: 'string', maxLength: 100 },
    title: { type: 'string', maxLength: 200 },
    openedAt: time,
    estimatedEnd: time,
    startsAt: time,
    subscribers: { type: 'integer', minimum: 0 },
  },
} as const;

const subscriberFacts = {
  type: 'object',
  required: ['id', 'paidSms', 'language', 'segment', 'siteId'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 100 },
    paidSms: { type: 'boolean' },
    language: { type: 'string', pattern: '^[a-z]{2}$' },
    segment: { type: 'string', enum: ['residential', 'business'] },
    siteId: { type: 'string', minLength: 1, maxLength: 100 },
    area: { type: 'string', maxLength: 200 },
    channels: { type: 'array', items: { type: 'string', enum: ['sms', 'voice', 'email', 'webhook'] } },
    quietHours: { type: 'string', pattern: '^\\d{1,2}:\\d{2}-\\d{1,2}:\\d{2}$' },
    preferences: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
  },
} as const;

const pinned = {
  at: {
    ...time,
    description: 'The moment to decide at (local time of day, weekday, holiday, how long open); default now',
  },
  version: {
    type: 'string',
    pattern: '^[0-9a-f]{12}$',
    description: 'A rule version this process has loaded (default: the current one)',
  },
} as const;

/** Explanations and simulations are nested reports: their shape is documented in rules/explain.ts and rules/simulate.ts. */
const report = { type: 'object', additionalProperties: true } as const;

interface ExplainBody {
  incident: IncidentFacts;
  subscriber: SubscriberFacts;
  at?: string;
  version?: string;
}
interface SimulateBody {
  incident: IncidentFacts;
  subscribers?: SubscriberFacts[];
  population?: { count: number; seed?: number };
  at?: string;
  version?: string;
}

export const rulesRoutes: FastifyPluginAsync<RulesRoutesOptions> = async (app, options) => {
  const holder = options.rules;
  if (!app.getSchema('Error')) app.addSchema(errorSchema);
  const rulesDir = () => path.dirname(holder.entry);

  const ruleSet = (version?: string): RuleSet => {
    if (!version) return holder.current();
    const found = holder.get(version);
    if (!found)
      throw new ApiError(
        404,
        'unknown_rules_version',
        `This process has not loaded rules version ${version}; it has ${holder.knownVersions().join(', ')}.`,
      );
    return found;
  };

  app.get(
    '/v1/rules',
    {
      schema: {
        tags: ['rules'],
        summary: 'The rules in force: version, files, when they were loaded',
        response: {
          200: {
            type: 'object',
            properties: {
              version: { type: 'string' },
              entry: { type: 'string' },
              files: { type: 'array', items: { type: 'string' } },
              loadedAt: time,
              rules: { type: 'array', items: { type: 'string' } },
              templateSets: { type: 'array', items: { type: 'string' } },
              subscriberFactsRead: {
                type: 'array',
                items: { type: 'string' },
                description: 'What evaluations are grouped on',
              },
              warnings: { type: 'array', items: problem },
              knownVersions: { type: 'array', items: { type: 'string' } },
              lastReload: {
                type: 'object',
                nullable: true,
                properties: {
                  at: time,
                  status: { type: 'string' },
                  version: { type: 'string' },
                  errors: { type: 'array', items: problem },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      const current = holder.current();
      const last = holder.lastReload;
      return {
        version: current.version,
        entry: current.entry,
        files: current.files.map((f) => f.name),
        loadedAt: current.loadedAt.toISOString(),
        rules: current.ruleNames,
        templateSets: current.templateSets,
        subscriberFactsRead: current.subscriberFactsRead,
        warnings: current.warnings,
        knownVersions: holder.knownVersions(),
        lastReload: last
          ? {
              at: last.at.toISOString(),
              status: last.outcome.status,
              version: last.outcome.version,
              errors: last.outcome.status === 'invalid' ? last.outcome.errors : [],
            }
          : null,
      };
    },
  );

  app.post<{ Body: { yaml?: string; path?: string } }>(
    '/v1/rules/check',
    {
      schema: {
        tags: ['rules'],
        summary: 'Check rules before they go live: every error and warning with file, line and column',
        description:
          'Give `yaml` (the text of a main rule file; includes are read relative to the rules folder) or `path` (a file inside the rules folder). Nothing is loaded.',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            yaml: { type: 'string', maxLength: 2_000_000 },
            path: { type: 'string', minLength: 1, maxLength: 500 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              ok: { type: 'boolean' },
              version: { type: 'string' },
              errors: { type: 'array', items: problem },
              warnings: { type: 'array', items: problem },
              files: { type: 'array', items: { type: 'string' } },
            },
          },
          400: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const { yaml, path: given } = req.body;
      if ((yaml === undefined) === (given === undefined))
        throw new ApiError(
          400,
          'invalid_request',
          'Give either yaml (the text of a rule file) or path (a file in the rules folder).',
        );
      let target = holder.entry;
      if (given !== undefined) {
        // Only files under the rules folder: the API must not become a way to read the server's disk.
        target = path.resolve(rulesDir(), given);
        if (target !== rulesDir() && !target.startsWith(rulesDir() + path.sep)) {
          throw new ApiError(
            400,
            'path_outside_rules',
            `path must name a file inside the rules folder (${rulesDir()}).`,
          );
        }
      }
      // With the escalations this deployment cannot send as written (a call with no voice channel, an e-mail with no SMTP relay), as the CLI says them.
      // And the escalations in areas where no stored contact is, or none is on call.
      return checkRulesHere(target, yaml, staffChannelsFromEnv(), await options.storedContacts?.());
    },
  );

  app.post<{ Body: ExplainBody }>(
    '/v1/rules/explain',
    {
      schema: {
        tags: ['rules'],
        summary: 'Which rules matched one subscriber for one incident, which did not, and why',
        body: {
          type: 'object',
          required: ['incident', 'subscriber'],
          additionalProperties: false,
          properties: { incident: incidentFacts, subscriber: subscriberFacts, ...pinned },
        },
        response: {
          200: { type: 'object', properties: { explanation: report, text: { type: 'string' } } },
          404: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const rules = ruleSet(req.body.version);
      const explanation = await rules.explain(req.body.incident, req.body.subscriber, { at: req.body.at });
      return { explanation, text: rules.formatExplanation(explanation) };
    },
  );

  app.post<{ Body: SimulateBody }>(
    '/v1/rules/simulate',
    {
      // A pasted audience can be large: about 150 bytes a subscriber.
      bodyLimit: 64 * 1024 * 1024,
      schema: {
        tags: ['rules'],
        summary: 'Who would get what for an incident: counts by channel, rule and text, when, SMS parts and cost',
        description:
          'The audience is `subscribers`, else `population` made-up subscribers spread over the sites, else (when the server has a database) the real subscribers of the sites.',
        body: {
          type: 'object',
          required: ['incident'],
          additionalProperties: false,
          properties: {
            incident: incidentFacts,
            subscribers: { type: 'array', maxItems: 1_000_000, items: subscriberFacts },
            population: {
              type: 'object',
              required: ['count'],
              additionalProperties: false,
              properties: { count: { type: 'integer', minimum: 1, maximum: 1_000_000 }, seed: { type: 'integer' } },
            },
            ...pinned,
          },
        },
        response: { 200: report, 400: { $ref: 'Error#' }, 404: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const { incident, subscribers, population, at, version } = req.body;
      const rules = ruleSet(version);
      let audience: SubscriberFacts[] | AsyncIterable<SubscriberFacts>;
      if (subscribers) audience = subscribers;
      else if (population)
        audience = syntheticSubscribers(population.count, {
          siteIds: incident.siteIds,
          areas: incident.areas?.length
            ? incident.siteIds.map((_, i) => incident.areas![i % incident.areas!.length]!)
            : undefined,
          seed: population.seed,
        });
      else if (options.audience) audience = await options.audience(incident);
      else
        throw new ApiError(
          400,
          'no_audience',
          'Give subscribers, or a population to make up (e.g. {"count": 5000}): this server reads no subscribers itself.',
        );
      return rules.simulate(incident, audience, { at });
    },
  );

  app.post(
    '/v1/rules/reload',
    {
      schema: {
        tags: ['rules'],
        summary: 'Read the rule files again; they replace the current rules only if they are valid',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['updated', 'unchanged'] },
              version: { type: 'string' },
              previousVersion: { type: 'string' },
              warnings: { type: 'array', items: problem },
            },
          },
          422: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const outcome = await holder.reload();
      if (outcome.status === 'invalid') {
        throw new ApiError(
          422,
          'invalid_rules',
          `The rule files have ${outcome.errors.length} error(s); still using version ${outcome.version}.`,
          { errors: outcome.errors, warnings: outcome.warnings },
        );
      }
      if (outcome.status === 'updated')
        req.log.info(
          { version: outcome.version, previousVersion: outcome.previousVersion },
          'rules reloaded through the API',
        );
      return outcome;
    },
  );
};
