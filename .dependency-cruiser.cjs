/**
 * The import rules of ARCHITECTURE (README, "Layout"), checked by `npm run check:imports` as part of
 * `npm test`. A violation names the rule and the offending import. Type-only imports count: a
 * layer that may not call another may not name its types either.
 */
const layer = (name) => `^internal/${name}/`;
const outside = (...allowed) => `^internal/(?!(${allowed.join('|')})/)`;

/**
 * The layers of internal/ that may import only the layers listed (besides their own), one rule each,
 * named and explained here so that a violation names its rule. `libraries` are packages the layer
 * may not import either; `except` is a file it may import although its layer is not listed.
 */
const layers = [
  {
    layer: 'domain',
    rule: 'domain-imports-nothing',
    comment: 'domain/ holds types, schemas and pure rules: it imports nothing else of internal/ and no I/O library.',
    allowed: [],
    libraries: 'postgres|ioredis|hono|@hono|pino',
  },
  {
    layer: 'platform',
    rule: 'platform-imports-platform-and-domain',
    comment: 'platform/ (config, logger, connections, deadlines) knows no table, key or route.',
    allowed: ['domain'],
  },
  {
    layer: 'repository',
    rule: 'repository-imports-platform-and-domain',
    comment: 'repository/ is every SQL statement, and needs only the database and the domain types.',
    allowed: ['platform', 'domain'],
  },
  {
    layer: 'queue',
    rule: 'queue-imports-platform-and-domain',
    comment: 'queue/ is every Redis command, and needs only the connection and the domain types.',
    allowed: ['platform', 'domain'],
  },
  {
    layer: 'channels',
    rule: 'channels-import-platform-and-domain',
    comment: 'A channel delivers; stored data it needs is passed in, and what changed is returned.',
    allowed: ['platform', 'domain'],
  },
  {
    layer: 'service',
    rule: 'service-never-imports-http-worker-or-hono',
    comment: 'service/ holds the use cases; HTTP and the worker loops call it, never the other way.',
    allowed: ['domain', 'platform', 'repository', 'queue', 'channels'],
    libraries: 'hono|@hono',
  },
  {
    layer: 'metrics',
    rule: 'metrics-imports-platform-and-domain',
    comment: 'Registries and the /metrics route; what they sample is passed in as a function.',
    allowed: ['platform', 'domain'],
  },
  {
    layer: 'http',
    rule: 'http-imports-service-metrics-domain-logger',
    comment: 'Handlers parse, call one service function and answer; a service re-exports what a handler needs.',
    allowed: ['service', 'metrics', 'domain'],
    except: '^internal/platform/logger\\.ts$',
  },
];

/** The rule for one row of `layers`. */
function layerRule({ layer: name, rule, comment, allowed, libraries, except }) {
  const path = libraries ? [outside(name, ...allowed), `^node_modules/(${libraries})/`] : outside(name, ...allowed);
  return { name: rule, comment, severity: 'error', from: { path: layer(name) }, to: except ? { path, pathNot: except } : { path } };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layers.map(layerRule),
    {
      name: 'worker-never-imports-http',
      severity: 'error',
      from: { path: layer('worker') },
      to: { path: [layer('http'), '^node_modules/(hono|@hono)/'] },
    },
    {
      name: 'nothing-imports-cmd',
      comment: 'cmd/ holds the processes, the only place that wires everything together.',
      severity: 'error',
      from: {},
      to: { path: '^cmd/' },
    },
    {
      name: 'no-cycles',
      comment: 'No import cycles between files (and so none between folders), type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'No two folders import each other, even through different files.',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'internal-reached-from-cmd',
      comment: 'Every module of internal/ serves a process: one that only tests reach is dead code.',
      severity: 'error',
      from: { path: '^cmd/' },
      to: { path: '^internal/.*\\.ts$', reachable: false },
    },
    {
      name: 'no-dev-dependencies-in-production',
      comment: 'cmd/ and internal/ run with `npm ci --omit=dev` in the image.',
      severity: 'error',
      from: { path: '^(cmd|internal)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
