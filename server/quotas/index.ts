/** Quotas: the limits a request is checked against — per-domain quotas, budgets and the disk budget. */
export { Quotas, QUOTA_NAMES } from './quotas.js';
export type { DomainBudget } from './domain-budget.js';
export { DomainBudgets } from './domain-budgets.js';
export { DISK_BUDGET_DEFAULT, DiskBudget, type DiskBudgetOptions } from './disk-budget.js';
