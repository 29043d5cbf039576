// The workflows the worker registers. Only workflow code and pure helpers may be imported here.
export { incidentWorkflow } from './incident';
export { billingMonthWorkflow } from './billing';
export { maintenanceWorkflow } from './maintenance';
export { retentionWorkflow } from './retention';
