/** Transactions: whose commit takes its turn when transactions conflict. */
export { Fairness } from './fairness.js';
