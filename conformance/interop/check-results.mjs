// Independent strictness check over the official suite's results, run by official-suite.sh
// after the suite itself. The suite already fails on unexpected failures and on stale
// baseline entries; this re-derives both from the checks.json files it wrote, and also fails on
// what the suite silently ignores: baseline entries that name no scenario of the run (typos,
// renamed or dropped scenarios), baseline entries without a reason comment, duplicates, and
// scenarios that left no result.
//
// usage: node check-results.mjs SUITE_NODE_MODULES RESULTS_DIR BASELINE_YAML SCENARIO...
// Exit 0 = matches the baseline exactly; 1 = mismatch; 2 = usage / unreadable input.

import { createRequire } from 'node:module';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const [nodeModules, resultsDir, baselinePath, ...scenarios] = process.argv.slice(2);
if (!nodeModules || !resultsDir || !baselinePath || scenarios.length === 0) {
  console.error('usage: check-results.mjs SUITE_NODE_MODULES RESULTS_DIR BASELINE_YAML SCENARIO...');
  process.exit(2);
}

// The suite's own YAML parser, so both read the baseline the same way.
const require = createRequire(path.join(nodeModules, 'noop.js'));
const YAML = require('yaml');

const problems = [];

// --- baseline -------------------------------------------------------------------------------
const baselineText = readFileSync(baselinePath, 'utf8');
const doc = YAML.parse(baselineText) ?? {};
if (typeof doc !== 'object' || Array.isArray(doc)) {
  console.error(`${baselinePath}: expected a mapping with a 'server' key`);
  process.exit(2);
}
const listed = doc.server ?? [];
if (!Array.isArray(listed) || listed.some((e) => typeof e !== 'string')) {
  console.error(`${baselinePath}: 'server' must be a list of scenario names`);
  process.exit(2);
}
const seen = new Set();
for (const name of listed) {
  if (seen.has(name)) problems.push(`baseline lists '${name}' twice`);
  seen.add(name);
}

// Every entry carries its reason: a comment on the line(s) directly above, or inline.
const lines = baselineText.split('\n');
for (const name of listed) {
  const i = lines.findIndex((l) => new RegExp(`^\\s*-\\s*['"]?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]?\\s*(#.*)?$`).test(l));
  if (i < 0) continue; // flow-style list: cannot tell, the YAML parse above still holds
  const inline = /#\s*\S/.test(lines[i]);
  const above = i > 0 && /^\s*#\s*\S/.test(lines[i - 1]);
  if (!inline && !above) problems.push(`baseline entry '${name}' has no reason comment`);
}

// --- results --------------------------------------------------------------------------------
// The suite writes RESULTS_DIR/server-<scenario>-<timestamp>/checks.json; the script clears
// RESULTS_DIR before each run, so there is one directory per scenario.
const results = new Map();
for (const dir of existsSync(resultsDir) ? readdirSync(resultsDir) : []) {
  const file = path.join(resultsDir, dir, 'checks.json');
  if (!existsSync(file)) continue;
  const scenario = scenarios.find((s) => dir.startsWith(`server-${s}-`) && /^\d{4}-/.test(dir.slice(`server-${s}-`.length)));
  if (!scenario) continue;
  results.set(scenario, JSON.parse(readFileSync(file, 'utf8')));
}

const passed = [];
const expected = [];
const unexpected = [];
const stale = [];
for (const s of scenarios) {
  const checks = results.get(s);
  if (!checks) {
    problems.push(`scenario '${s}' left no checks.json`);
    continue;
  }
  // Same rule as the suite: any FAILURE or WARNING check fails the scenario.
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
  const isListed = seen.has(s);
  if (bad.length > 0 && isListed) expected.push(s);
  else if (bad.length > 0) unexpected.push([s, bad.map((c) => `${c.id}: ${c.status}${c.errorMessage ? ` (${c.errorMessage})` : ''}`)]);
  else if (isListed) stale.push(s);
  else passed.push(s);
}
for (const name of seen) {
  if (!scenarios.includes(name)) problems.push(`baseline entry '${name}' is not a scenario of this run (typo, renamed or dropped?)`);
}

// --- report ---------------------------------------------------------------------------------
for (const [s, why] of unexpected) console.log(`  ✗ unexpected failure: ${s} — ${why.join('; ')}`);
for (const s of stale) console.log(`  ✗ stale baseline entry (now passes, remove it): ${s}`);
for (const p of problems) console.log(`  ✗ ${p}`);
const failures = unexpected.length + stale.length + problems.length;
console.log(
  `${scenarios.length} scenarios: ${passed.length} pass, ${expected.length} fail as the baseline ` +
    `expects (counted as skipped below), ${unexpected.length} unexpected failures, ` +
    `${stale.length} stale baseline entries, ${problems.length} other problems`
);
// Plain closing line in the `N passed, N failed, N skipped` form that CI logs are read for.
console.log(`official-suite: ${passed.length} passed, ${failures} failed, ${expected.length} skipped`);
process.exit(failures === 0 ? 0 : 1);
