/**
 * Billing: run (re-run, backfill) a month, export its invoice lines, read the reports.
 *
 * Running a month starts its billing workflow (or joins the one running): the ledger's keys make
 * every run of a month add only what is missing, so a repeated request, with or without an
 * Idempotency-Key, never bills twice.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { billingSettingsFromEnv } from '../../config';
import type { BillingSettings } from '../../billing/settings';
import { monthHasEnded } from '../../billing/period';
import { billingWorkflowId, startBillingRun } from '../../billing/schedule';
import { invoiceLinesCsv } from '../../billing/invoice-lines';
import { csvText } from '../../billing/csv';
import { loadReport, reportJson, REPORTS, type ReportName } from '../../billing/reports';
import { monthTotals } from '../../store/ledger';

const MONTH_PATTERN = '^[0-9]{4}-(0[1-9]|1[0-2])$';

const monthParam = {
  type: 'object',
  required: ['month'],
  properties: {
    month: { type: 'string', pattern: MONTH_PATTERN, description: 'A calendar month in Italian time, YYYY-MM' },
  },
} as const;

const summarySchema = {
  type: 'object',
  properties: {
    month: { type: 'string' },
    currency: { type: 'string' },
    lines: { type: 'integer' },
    netCents: { type: 'integer' },
    vatCents: { type: 'integer' },
    grossCents: { type: 'integer' },
  },
} as const;

const termsSchema = {
  type: 'object',
  properties: {
    priceCents: { type: 'integer' },
    vatBasisPoints: { type: 'integer', description: '22% is 2200' },
    currency: { type: 'string' },
    proration: { type: 'string', enum: ['full', 'daily'] },
  },
} as const;

const runResult = {
  type: 'object',
  properties: {
    month: { type: 'string' },
    workflowId: { type: 'string' },
    status: { type: 'string', enum: ['started', 'completed'] },
    result: {
      type: 'object',
      nullable: true,
      properties: {
        month: { type: 'string' },
        decidedBy: { type: 'string' },
        terms: termsSchema,
        pages: { type: 'integer' },
        considered: { type: 'integer' },
        charged: { type: 'integer' },
        added: { type: 'integer' },
        existing: { type: 'integer' },
        summary: summarySchema,
      },
    },
  },
} as const;

interface BillingAppDeps extends AppDeps {
  /** Billing settings; the BILLING_* variables when not given. */
  billing?: BillingSettings;
}

function endedOrThrow(month: string): void {
  if (!monthHasEnded(month, new Date()))
    throw new ApiError(
      409,
      'month_not_ended',
      `${month} is not over yet (Italian time): a month is billed once it has ended.`,
    );
}

export const billingRoutes: FastifyPluginAsync<AppDeps> = async (app, appDeps) => {
  const deps = appDeps as BillingAppDeps;
  const { store, temporal, taskQueue } = deps;
  let settings = deps.billing;
  const billing = (): BillingSettings => (settings ??= billingSettingsFromEnv());

  app.post<{ Params: { month: string }; Querystring: { wait?: boolean } }>(
    '/v1/billing/months/:month/run',
    {
      schema: {
        tags: ['billing'],
        summary: 'Bill a month: the scheduled run again, or a backfill',
        description:
          'Charges every subscriber whose paid SMS option was active in the month (a month that has ended). Safe to repeat: a month run again adds only what its ledger lacks, and two requests at once start one run. `wait=true` answers when the run is done (small databases); otherwise 202 at once.',
        params: monthParam,
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'Accepted; a month run is idempotent whatever the key',
            },
          },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { wait: { type: 'boolean', default: false } },
        },
        response: { 200: runResult, 202: runResult, 409: { $ref: 'Error#' } },
      },
    },
    async (req, reply) => {
      const { month } = req.params;
      endedOrThrow(month);
      const handle = await startBillingRun(temporal, taskQueue, month);
      req.log.info({ month, workflowId: handle.workflowId }, 'billing run requested');
      reply.header('location', `/v1/billing/months/${month}`);
      if (!req.query.wait)
        return reply.status(202).send({ month, workflowId: handle.workflowId, status: 'started', result: null });
      return reply
        .status(200)
        .send({ month, workflowId: handle.workflowId, status: 'completed', result: await handle.result() });
    },
  );

  app.get<{ Params: { month: string } }>(
    '/v1/billing/months/:month',
    {
      schema: {
        tags: ['billing'],
        summary: "A month's billing: its terms, its run, its totals",
        params: monthParam,
        response: {
          200: {
            type: 'object',
            properties: {
              month: { type: 'string' },
              billed: { type: 'boolean', description: 'A run has completed at least once' },
              terms: { ...termsSchema, nullable: true },
              firstRunAt: { type: 'string', format: 'date-time', nullable: true },
              lastStartedAt: { type: 'string', format: 'date-time', nullable: true },
              completedAt: { type: 'string', format: 'date-time', nullable: true },
              totals: { type: 'array', items: summarySchema },
              workflow: {
                type: 'object',
                nullable: true,
                properties: { workflowId: { type: 'string' }, status: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const { month } = req.params;
      const run = await store.billingRuns.findOne({ _id: month });
      let workflow: { workflowId: string; status: string } | null = null;
      try {
        const d = await temporal.workflow.getHandle(billingWorkflowId(month)).describe();
        workflow = { workflowId: d.workflowId, status: d.status.name };
      } catch {
        workflow = null; // never run by hand, or Temporal unreachable: the ledger still answers
      }
      return {
        month,
        billed: Boolean(run?.completedAt),
        terms: run?.terms ?? null,
        firstRunAt: run?.createdAt ?? null,
        lastStartedAt: run?.lastStartedAt ?? null,
        completedAt: run?.completedAt ?? null,
        // A completed run's own sums; summed now (a few seconds per 20,000 lines) while none has completed.
        totals: run?.completedAt && run.summary ? [run.summary] : await monthTotals(store, month),
        workflow,
      };
    },
  );

  app.get<{ Params: { month: string } }>(
    '/v1/billing/months/:month/invoice-lines.csv',
    {
      schema: {
        tags: ['billing'],
        summary: "A month's invoice lines, as CSV for the invoicing system",
        description:
          'RFC 4180 CSV (UTF-8, CRLF), one line per subscriber charged, in line id order; amounts with a decimal point and two digits. `line_id` is unique and stable: import it as the line key.',
        params: monthParam,
        produces: ['text/csv'],
        response: {
          200: { description: 'The lines, CSV', type: 'string' },
          404: { $ref: 'Error#' },
          409: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      const { month } = req.params;
      const run = await store.billingRuns.findOne({ _id: month }, { projection: { completedAt: 1 } });
      if (!run)
        throw new ApiError(
          404,
          'month_not_billed',
          `${month} has not been billed: POST /v1/billing/months/${month}/run first.`,
        );
      if (!run.completedAt)
        throw new ApiError(
          409,
          'month_in_progress',
          `${month} is being billed and no run has completed yet; try again when GET /v1/billing/months/${month} says billed.`,
        );
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="avviso-invoice-lines-${month}.csv"`)
        .send(invoiceLinesCsv(store, month));
    },
  );

  app.get<{
    Params: { report: ReportName };
    Querystring: { format: 'json' | 'csv'; from?: string; to?: string; limit: number };
  }>(
    '/v1/billing/reports/:report',
    {
      schema: {
        tags: ['billing'],
        summary: 'Billing reports: revenue, costs, incidents, per-subscriber',
        description: [
          "revenue: the SMS option's revenue per month (net, VAT, gross).",
          "costs: notification cost per month, in the provider's currency (and converted with BILLING_FX_RATES).",
          'incidents: the incidents that cost most.',
          'per-subscriber: per month, paying subscribers, revenue, cost and margin per paying subscriber.',
          'JSON has integer amounts (…Cents, …Micros) and notes on currencies; CSV has decimal amounts.',
        ].join(' '),
        params: {
          type: 'object',
          required: ['report'],
          properties: { report: { type: 'string', enum: [...REPORTS] } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['json', 'csv'], default: 'json' },
            from: { type: 'string', pattern: MONTH_PATTERN, description: 'First month, YYYY-MM' },
            to: { type: 'string', pattern: MONTH_PATTERN, description: 'Last month, YYYY-MM' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20, description: 'incidents: how many' },
          },
        },
        response: {
          200: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: true,
                  properties: {
                    report: { type: 'string' },
                    billingCurrency: { type: 'string' },
                    notes: { type: 'array', items: { type: 'string' } },
                    rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
                  },
                },
              },
              'text/csv': { schema: { type: 'string' } },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const { report } = req.params;
      const { format, from, to, limit } = req.query;
      const r = await loadReport(store, report, billing(), { from, to, limit });
      if (format === 'csv') {
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="avviso-${report}.csv"`)
          .send(await csvText(r.columns, r.rows));
      }
      return reply.type('application/json; charset=utf-8').send(reportJson(r));
    },
  );
};
