// Parsing of HOST:PORT and URL endpoint addresses. Endpoints must be IP literals with numeric ports
// (grpc-js-xds rejects hostnames in EDS), so names are refused here with a clear message.
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** Parse `HOST:PORT`, `[v6]:PORT` or `http://HOST:PORT`. Returns an error string on failure. */
export function parseHostPort(input: string, opts: { allowHostname?: boolean; allowPortZero?: boolean } = {}): HostPort | string {
  let s = input.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme) {
    const proto = scheme[1]!.toLowerCase();
    if (proto !== 'http' && proto !== 'h2c' && proto !== 'grpc') return `unsupported scheme "${proto}" in "${input}" (expected http://)`;
    s = s.slice(scheme[0].length).replace(/\/.*$/, '');
  }
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') return `"${input}" is not [IPv6]:PORT`;
    host = s.slice(1, end);
    portText = s.slice(end + 2);
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0) return `"${input}" is not HOST:PORT`;
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) return `"${input}": IPv6 hosts must be in brackets, e.g. [::1]:8080`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `"${input}": port "${portText}" is not a number`;
  const port = Number(portText);
  const minPort = opts.allowPortZero ? 0 : 1;
  if (port < minPort || port > 65535) return `"${input}": port ${port} is out of range ${minPort}-65535`;
  if (!opts.allowHostname && isIP(host) === 0) {
    if (host === 'localhost') host = '127.0.0.1';
    else return `"${input}": host "${host}" is not an IP literal (endpoints need IP addresses)`;
  }
  if (host === '') return `"${input}": empty host`;
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether a listen host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
