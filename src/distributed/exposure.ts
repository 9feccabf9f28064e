/**
 * What a TensorFlow worker server exposes: libtensorflow's gRPC server listens on its port on
 * every interface (IPv4 and IPv6), without authentication, whatever host TF_CONFIG names. A
 * multi-node run says so at start, naming this machine's addresses, so the operator knows what
 * to fence (docs/reliability-and-security.md: a Kubernetes NetworkPolicy, a Slurm note).
 */
import { networkInterfaces } from 'node:os';

/** The addresses of this machine's interfaces other than loopback ("eth0 10.0.0.5", ...). */
export function externalAddresses(): string[] {
  const out: string[] = [];
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    for (const a of addresses ?? []) if (!a.internal) out.push(`${name} ${a.address}`);
  }
  return out;
}

/** One line saying which interfaces the worker server(s) on `ports` can be reached on. */
export function openInterfacesNote(ports: readonly number[]): string {
  const external = externalAddresses();
  const plural = ports.length > 1;
  const which = `TensorFlow's gRPC server${plural ? 's' : ''} (port${plural ? 's' : ''} ${ports.join(', ')})`;
  const listen = plural ? 'listen' : 'listens';
  if (external.length === 0) return `${which} ${listen} on loopback only: no interface but loopback is up in this network namespace`;
  return (
    `${which} ${listen} on every interface, unauthenticated: loopback and ${external.join(', ')}. ` +
    'Anyone who reaches such a port can run code in the worker: fence the cluster network (see docs/reliability-and-security.md)'
  );
}
