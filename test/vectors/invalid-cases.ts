/**
 * The invalid inputs in test/vectors/invalid, and what the one-line message
 * for each must name: the file is always named; these add the op index
 * (`ops[N]`) and the field, where there is one. Shared by the conformance
 * test (loadOpsFile) and the CLI test (the built binary).
 */
export const INVALID_CASES: Readonly<Record<string, readonly string[]>> = {
  'bad-json.json': ['invalid JSON'],
  'unknown-op.json': ['ops[1].op', 'convertAll'],
  'unknown-field.json': ['ops[0].colour'],
  'wrong-type.json': ['ops[1].size'],
  'wrong-type-bool.json': ['ops[0].toDiscard'],
  'negative.json': ['ops[0].offset'],
  'fractional.json': ['ops[2].iova'],
  'unsafe-integer.json': ['ops[0].size'],
  'missing-field.json': ['ops[1].section'],
  'unknown-container.json': ['ops[1].container', 'nope'],
  'section-negative.json': ['ops[1].section.iova'],
  'config-unknown-field.json': ['config.rollbak'],
  'config-wrong-enum.json': ['config.inplaceOrder'],
  'bad-backend.json': ['ops[0].backend'],
};
