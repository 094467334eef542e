// Strict TypeScript consumer (CommonJS): `import = require` resolves the require condition's .d.ts.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS form is what this file tests
import inferzip = require('inferzip');

export const name: string = inferzip.backend().name;
export const err = new inferzip.InferzipError('INVALID_ARGUMENT', 'x');
