/** Whether a process of this machine is running (a pid that exists, ours or another user's). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user (or outside our user namespace).
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
