/**
 * The one place that connects to Temporal and names workflows, so that the API, the CLI and the
 * tests start and address incidents the same way.
 */
import { Client, Connection, WorkflowIdConflictPolicy, type TLSConfig } from '@temporalio/client';
import type { IncidentInput } from '../workflows/incident';
import type { MaintenanceInput } from '../workflows/maintenance-api';

export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  /** TLS or mutual TLS to the frontend (config/temporal-tls.ts); plain when absent. */
  tls?: TLSConfig;
}

export async function connectTemporal(s: TemporalSettings): Promise<Client> {
  const connection = await Connection.connect({
    address: s.address,
    connectTimeout: '10 seconds',
    ...(s.tls ? { tls: s.tls } : {}),
  });
  return new Client({ connection, namespace: s.namespace });
}

/** An incident's workflow id follows from the incident id, so a repeated trigger finds the same workflow. */
export function incidentWorkflowId(incidentId: string): string {
  return `incident:${incidentId}`;
}

/** Starts the incident's workflow, or finds the running one: starting twice starts one workflow. */
export async function startIncidentWorkflow(client: Client, taskQueue: string, input: IncidentInput): Promise<string> {
  const workflowId = incidentWorkflowId(input.incidentId);
  await client.workflow.start('incidentWorkflow', {
    taskQueue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
  return workflowId;
}

/** A maintenance's workflow id follows from its id, as an incident's does. */
export function maintenanceWorkflowId(maintenanceId: string): string {
  return `maintenance:${maintenanceId}`;
}

/** Starts the maintenance's workflow, or finds the running one: starting twice starts one workflow. */
export async function startMaintenanceWorkflow(
  client: Client,
  taskQueue: string,
  input: MaintenanceInput,
): Promise<string> {
  const workflowId = maintenanceWorkflowId(input.maintenanceId);
  await client.workflow.start('maintenanceWorkflow', {
    taskQueue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
  return workflowId;
}
