/**
 * Who a maintenance will tell, and when, before anyone is told: for one being scheduled (the
 * body of POST /v1/maintenances, nothing stored) and for one scheduled (with its pinned rules).
 * services/maintenance-preview.ts decides as the workflow's planning does.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import type { Severity } from '../../domain/types';
import { unknownSites } from '../../store/network';
import { rulesResolver } from '../../store/rule-versions';
import { checkWindow, MaintenanceInputError } from '../../services/maintenances';
import { previewMaintenance } from '../../services/maintenance-preview';

const time = { type: 'string', format: 'date-time' } as const;

const previewSchema = {
  type: 'object',
  properties: {
    maintenanceId: { type: 'string' },
    rulesVersion: { type: 'string' },
    startsAt: time,
    endsAt: time,
    sites: { type: 'integer', description: 'The sites named and every site they feed' },
    areas: { type: 'array', items: { type: 'string' } },
    subscribers: { type: 'integer', description: 'Subscribers on those sites' },
    told: { type: 'integer', description: 'Subscribers the rules tell about it' },
    rounds: {
      type: 'array',
      description:
        'Each message round in send order: the notice, each reminder, the start notice; a round that quiet hours split appears once per send time',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ['maintenance', 'reminder', 'started'] },
          beforeSeconds: { type: 'integer', description: 'reminder: how long before the start' },
          sendAt: time,
          past: { type: 'boolean', description: 'The time is past: sent already, or going at once' },
          byChannel: { type: 'object', additionalProperties: { type: 'integer' } },
          total: { type: 'integer' },
        },
      },
    },
    skippedReminders: {
      type: 'array',
      items: { type: 'integer' },
      description: 'Reminders (seconds before the start) already past when it was decided: not sent',
    },
  },
} as const;

export const maintenancePreviewRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;
  const holder = deps.rules;
  if (!holder) return;
  const rulesFor = rulesResolver(store, holder);

  app.post<{ Body: { siteIds: string[]; startsAt: string; endsAt: string; title?: string; severity?: Severity } }>(
    '/v1/maintenances/preview',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Preview a maintenance before scheduling it: who will be told, when, on which channel',
        description:
          'Takes the body POST /v1/maintenances takes (key and description aside); stores nothing and tells nobody.',
        body: {
          type: 'object',
          required: ['siteIds', 'startsAt', 'endsAt'],
          additionalProperties: false,
          properties: {
            siteIds: {
              type: 'array',
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
            startsAt: time,
            endsAt: time,
            title: { type: 'string', maxLength: 200 },
            description: { type: 'string', maxLength: 2000 },
            severity: { type: 'string', enum: ['minor', 'major', 'critical'], default: 'minor' },
          },
        },
        response: { 200: previewSchema, 422: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const now = new Date();
      let window: { startsAt: Date; endsAt: Date };
      try {
        window = checkWindow(req.body.startsAt, req.body.endsAt, now);
      } catch (err) {
        if (err instanceof MaintenanceInputError) throw new ApiError(422, err.code, err.message, err.details);
        throw err;
      }
      const missing = await unknownSites(store, req.body.siteIds);
      if (missing.length)
        throw new ApiError(
          422,
          'unknown_site',
          `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
          { field: 'body.siteIds', unknown: missing },
        );
      const p = await previewMaintenance(store, holder.current(), { ...req.body, ...window, decidedAt: now }, now);
      return { ...p, startsAt: window.startsAt, endsAt: window.endsAt };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/maintenances/:id/preview',
    {
      schema: {
        tags: ['maintenance'],
        summary:
          'Who a scheduled maintenance tells, and when: its notice, each reminder and the start notice, by channel',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^mnt_[a-z0-9]{16}$' } },
        },
        response: { 200: previewSchema, 404: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const m = await store.incidents.findOne({ _id: req.params.id, kind: 'maintenance' });
      if (!m?.window) throw new ApiError(404, 'maintenance_not_found', `No maintenance ${req.params.id}.`);
      const p = await previewMaintenance(
        store,
        await rulesFor(m.rulesVersion),
        { id: m._id, siteIds: m.siteIds, ...m.window, title: m.title, severity: m.severity, decidedAt: m.openedAt },
        new Date(),
      );
      return { maintenanceId: m._id, ...p, startsAt: m.window.startsAt, endsAt: m.window.endsAt };
    },
  );
};
