/**
 * Token merging and pruning: ToMe, DyCoke, HoliTom, FastV, TopV, Zero-TPrune, TempMe.
 * An internal barrel for the family (tests and the CLI import it); the public names are the
 * ones lib/index.ts lists.
 */
export * from './source-map.js';
export * from './tome.js';
export * from './temporal.js';
export * from './prune.js';
export * from './reduce.js';
