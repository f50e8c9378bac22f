/**
 * The import rules of ARCHITECTURE (README, "Layout"), checked by `npm run check:imports` as part of
 * `npm test`. A violation names the rule and the offending import. Type-only imports count: a
 * layer that may not call another may not name its types either.
 */
const layer = (name) => `^internal/${name}/`;
const outside = (...allowed) => `^internal/(?!(${allowed.join('|')})/)`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'domain-imports-nothing',
      comment: 'domain/ holds types, schemas and pure rules: it imports nothing else of internal/ and no I/O library.',
      severity: 'error',
      from: { path: layer('domain') },
      to: { path: [outside('domain'), '^node_modules/(postgres|ioredis|hono|@hono|pino)/'] },
    },
    {
      name: 'platform-imports-platform-and-domain',
      comment: 'platform/ (config, logger, connections, deadlines) knows no table, key or route.',
      severity: 'error',
      from: { path: layer('platform') },
      to: { path: outside('platform', 'domain') },
    },
    {
      name: 'repository-imports-platform-and-domain',
      comment: 'repository/ is every SQL statement, and needs only the database and the domain types.',
      severity: 'error',
      from: { path: layer('repository') },
      to: { path: outside('repository', 'platform', 'domain') },
    },
    {
      name: 'queue-imports-platform-and-domain',
      comment: 'queue/ is every Redis command, and needs only the connection and the domain types.',
      severity: 'error',
      from: { path: layer('queue') },
      to: { path: outside('queue', 'platform', 'domain') },
    },
    {
      name: 'channels-import-platform-and-domain',
      comment: 'A channel delivers; stored data it needs is passed in, and what changed is returned.',
      severity: 'error',
      from: { path: layer('channels') },
      to: { path: outside('channels', 'platform', 'domain') },
    },
    {
      name: 'service-never-imports-http-worker-or-hono',
      comment: 'service/ holds the use cases; HTTP and the worker loops call it, never the other way.',
      severity: 'error',
      from: { path: layer('service') },
      to: { path: [outside('service', 'domain', 'platform', 'repository', 'queue', 'channels'), '^node_modules/(hono|@hono)/'] },
    },
    {
      name: 'worker-never-imports-http',
      severity: 'error',
      from: { path: layer('worker') },
      to: { path: [layer('http'), '^node_modules/(hono|@hono)/'] },
    },
    {
      name: 'metrics-imports-platform-and-domain',
      comment: 'Registries and the /metrics route; what they sample is passed in as a function.',
      severity: 'error',
      from: { path: layer('metrics') },
      to: { path: outside('metrics', 'platform', 'domain') },
    },
    {
      name: 'http-imports-service-metrics-domain-logger',
      comment: 'Handlers parse, call one service function and answer; a service re-exports what a handler needs.',
      severity: 'error',
      from: { path: layer('http') },
      to: { path: outside('http', 'service', 'metrics', 'domain'), pathNot: '^internal/platform/logger\\.ts$' },
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
