/**
 * Preloaded (`--import`) into every process the benchmark starts: when the benchmark dies without
 * stopping it (SIGKILL, a crash), the process notices its parent is gone and stops too, gracefully
 * first and then for good.
 */
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watch);
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(1), 15_000).unref();
}, 1000);
watch.unref();
