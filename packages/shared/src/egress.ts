/**
 * One egress policy for every request made on a user's behalf (source downloads, webhook
 * deliveries): the address actually connected to must be public unicast, unless the operator
 * allows private addresses (ALLOW_PRIVATE_SOURCES, on outside production).
 *
 * The check runs in three places because a request reaches an address three ways:
 * - {@link checkUrl} before the first request: the scheme, IP literals (Node connects to those
 *   without a lookup, so a lookup guard never sees them) and `localhost` names;
 * - {@link guardedLookup} when a socket is opened for a host name: every address the name
 *   resolves to is judged at connect time, so a name that resolves differently later (DNS
 *   rebinding) is judged on what is actually connected to. Requests must go through
 *   {@link egressAgents}: a kept-alive socket is reused without a lookup, so sockets may only be
 *   pooled with others opened under the same policy (the global agent pools everyone's);
 * - {@link redirectGuard} on every redirect, with the same rule as {@link checkUrl}.
 *
 * Host notations are left to WHATWG URL, which `new URL()` applies to http(s) URLs: decimal,
 * octal, hex and short IPv4 (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), a trailing dot,
 * percent-encoded and full-width digits all become dotted decimal, and IPv6 literals become
 * their compressed hex form (`[::ffff:127.0.0.1]` → `[::ffff:7f00:1]`). The unit tests pin this.
 *
 * Addresses with an IPv4 address inside:
 * - IPv4-mapped `::ffff:0:0/96` and the NAT64 well-known prefix `64:ff9b::/96` are judged by the
 *   embedded IPv4: Node connects to the mapped one over IPv4, and DNS64 on an IPv6-only network
 *   answers `64:ff9b::<ipv4>` for every IPv4-only public host, so refusing them outright would
 *   break downloads there. `::ffff:8.8.8.8` is public, `::ffff:a9fe:a9fe` (169.254.169.254) is not.
 * - IPv4-compatible `::/96` (deprecated, RFC 4291), local-use NAT64 `64:ff9b:1::/48` (where the
 *   IPv4 sits depends on the operator's prefix length), 6to4 `2002::/16` and Teredo `2001::/32`
 *   (both reach their IPv4 through relays we do not control) are refused outright.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface EgressPolicy {
  /** Let requests reach loopback, private and other non-public addresses (ALLOW_PRIVATE_SOURCES). */
  allowPrivate: boolean;
  /**
   * Exact non-public addresses that stay reachable when `allowPrivate` is false: an internal
   * media server the operator vouches for. Only the listed address passes, not its range.
   * @defaultValue []
   */
  trustedAddresses?: readonly string[];
}

/** A request on a user's behalf would reach an address the egress policy refuses. */
export class EgressRefusedError extends Error {
  override name = 'EgressRefusedError';
}

type Range = readonly [prefix: string, bits: number, what: string];

/** IANA IPv4 special-purpose registry; the broadcast address comes before 240/4 so it gets its own name. */
const IPV4_SPECIAL: readonly Range[] = [
  ['0.0.0.0', 8, '"this network" (0.0.0.0/8)'],
  ['10.0.0.0', 8, 'a private address (10.0.0.0/8)'],
  ['100.64.0.0', 10, 'a shared carrier-grade NAT address (100.64.0.0/10)'],
  ['127.0.0.0', 8, 'a loopback address (127.0.0.0/8)'],
  ['169.254.0.0', 16, 'a link-local address, where cloud metadata services answer (169.254.0.0/16)'],
  ['172.16.0.0', 12, 'a private address (172.16.0.0/12)'],
  ['192.0.0.0', 24, 'an IETF protocol assignment (192.0.0.0/24)'],
  ['192.0.2.0', 24, 'a documentation address (192.0.2.0/24)'],
  ['192.31.196.0', 24, 'an AS112 service address (192.31.196.0/24)'],
  ['192.52.193.0', 24, 'an AMT relay address (192.52.193.0/24)'],
  ['192.88.99.0', 24, 'a 6to4 relay anycast address (192.88.99.0/24)'],
  ['192.168.0.0', 16, 'a private address (192.168.0.0/16)'],
  ['192.175.48.0', 24, 'an AS112 direct delegation address (192.175.48.0/24)'],
  ['198.18.0.0', 15, 'a benchmarking address (198.18.0.0/15)'],
  ['198.51.100.0', 24, 'a documentation address (198.51.100.0/24)'],
  ['203.0.113.0', 24, 'a documentation address (203.0.113.0/24)'],
  ['224.0.0.0', 4, 'a multicast address (224.0.0.0/4)'],
  ['255.255.255.255', 32, 'the broadcast address'],
  ['240.0.0.0', 4, 'a reserved address (240.0.0.0/4)'],
];

/**
 * IANA IPv6 special-purpose registry plus the deprecated site-local range. Narrow ranges come
 * before the ranges that contain them, for the name in the refusal. `::ffff:0:0/96` and
 * `64:ff9b::/96` are not here: they are judged by their embedded IPv4 before this list is read
 * (and Node's BlockList would match every IPv4 address against a mapped range).
 */
const IPV6_SPECIAL: readonly Range[] = [
  ['::', 128, 'the unspecified address (::)'],
  ['::1', 128, 'the loopback address (::1)'],
  ['::', 96, 'an IPv4-compatible address (::/96, deprecated)'],
  ['64:ff9b:1::', 48, 'a local-use NAT64 address (64:ff9b:1::/48)'],
  ['100::', 64, 'a discard-only address (100::/64)'],
  ['2001::', 32, 'a Teredo address (2001::/32)'],
  ['2001::', 23, 'an IETF protocol assignment (2001::/23)'],
  ['2001:db8::', 32, 'a documentation address (2001:db8::/32)'],
  ['2002::', 16, 'a 6to4 address (2002::/16)'],
  ['2620:4f:8000::', 48, 'an AS112 service address (2620:4f:8000::/48)'],
  ['3fff::', 20, 'a documentation address (3fff::/20)'],
  ['5f00::', 16, 'an SRv6 segment identifier (5f00::/16)'],
  ['fc00::', 7, 'a unique local address (fc00::/7)'],
  ['fe80::', 10, 'a link-local address (fe80::/10)'],
  ['fec0::', 10, 'a site-local address (fec0::/10, deprecated)'],
  ['ff00::', 8, 'a multicast address (ff00::/8)'],
];

/** One BlockList per range, so a refusal can say which range matched. */
function compile(ranges: readonly Range[], family: 'ipv4' | 'ipv6') {
  return ranges.map(([prefix, bits, what]) => {
    const list = new net.BlockList();
    list.addSubnet(prefix, bits, family);
    return { list, what };
  });
}

const ipv4Special = compile(IPV4_SPECIAL, 'ipv4');
const ipv6Special = compile(IPV6_SPECIAL, 'ipv6');
/** Everything IANA allocates as global unicast; an IPv6 address outside it is not public. */
const globalUnicast = new net.BlockList();
globalUnicast.addSubnet('2000::', 3, 'ipv6');

/** The eight 16-bit groups of an IPv6 address in any notation, or undefined if it is none. */
function ipv6Groups(address: string): number[] | undefined {
  let compressed: string;
  try {
    // WHATWG turns a dotted tail into hex groups and lower-cases, so only "::" is left to expand.
    compressed = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head = '', tail] = compressed.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}

const ipv4Of = (high: number, low: number) => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');

/**
 * Why `address` is not a public unicast address, or undefined when it is one. Anything that is
 * not an IP address (a name, a scoped `fe80::1%eth0`, garbage) is not public either.
 */
export function nonPublicReason(address: string): string | undefined {
  if (net.isIPv4(address)) return ipv4Special.find(({ list }) => list.check(address, 'ipv4'))?.what;
  const groups = net.isIPv6(address) ? ipv6Groups(address) : undefined;
  if (!groups) return 'not an IP address';
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups;
  const embedded = ipv4Of(g6, g7);
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    const reason = nonPublicReason(embedded);
    return reason && `IPv4-mapped ${embedded}, ${reason}`;
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    const reason = nonPublicReason(embedded);
    return reason && `NAT64 of ${embedded}, ${reason}`;
  }
  const canonical = groups.map((group) => group.toString(16)).join(':');
  const special = ipv6Special.find(({ list }) => list.check(canonical, 'ipv6'));
  if (special) return special.what;
  return globalUnicast.check(canonical, 'ipv6') ? undefined : 'outside global unicast (2000::/3)';
}

/** Whether `address` (an IPv4 or IPv6 address, without brackets) is public unicast. */
export function isPublicAddress(address: string): boolean {
  return nonPublicReason(address) === undefined;
}

const HINT = "requests made on a user's behalf may only reach public addresses (ALLOW_PRIVATE_SOURCES)";

/** Throws unless the policy lets a connection reach `address`. `label` names it in the message. */
function assertAddressAllowed(address: string, policy: EgressPolicy, label: string): void {
  if (policy.allowPrivate || policy.trustedAddresses?.includes(address)) return;
  const reason = nonPublicReason(address);
  if (reason) throw new EgressRefusedError(`${label} is ${reason}: ${HINT}`);
}

/** `localhost`, `localhost.` and every `*.localhost` name resolve to loopback by definition (RFC 6761). */
function isLocalhostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.+$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Checks a URL before it is requested, or before a redirect to it is followed: http(s) only,
 * an IP literal must be allowed by the policy, and `localhost` names are refused unless
 * private addresses are allowed. Other host names are judged at connect time by
 * {@link guardedLookup}. Returns the parsed URL.
 */
export function checkUrl(input: URL | string, policy: EgressPolicy): URL {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input;
  } catch {
    throw new EgressRefusedError(`${String(input)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EgressRefusedError(`${url.protocol}// URLs are refused: only http and https may be requested on a user's behalf`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (net.isIP(host)) {
    assertAddressAllowed(host, policy, url.host);
  } else if (!policy.allowPrivate && isLocalhostName(host)) {
    throw new EgressRefusedError(`${url.host} is a localhost name: ${HINT}`);
  }
  return url;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
type Resolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

/**
 * A `dns.lookup` replacement for HTTP clients: resolves every address of the name and refuses
 * the name if any of them is not allowed, so neither a mixed answer nor a later, different
 * answer lets a socket reach a private address. `resolve` is the resolver underneath.
 */
export function guardedLookup(policy: EgressPolicy, resolve: Resolver = dns.lookup): typeof dns.lookup {
  const lookup = (hostname: string, options: dns.LookupOptions | number | LookupCallback, maybeCallback?: LookupCallback) => {
    const callback = (typeof options === 'function' ? options : maybeCallback)!;
    const settings: dns.LookupOptions = typeof options === 'object' ? options : typeof options === 'number' ? { family: options } : {};
    resolve(hostname, { ...settings, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      try {
        for (const entry of addresses) assertAddressAllowed(entry.address, policy, `${hostname} resolves to ${entry.address}, which`);
      } catch (refusal) {
        return callback(refusal as EgressRefusedError, []);
      }
      if (settings.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      return callback(null, first.address, first.family);
    });
  };
  return lookup as unknown as typeof dns.lookup;
}

/**
 * A got `beforeRedirect` hook (typed loosely so this package needs no got): judges every
 * redirect target with {@link checkUrl}. IP-literal targets are never looked up, so without it
 * a public server could bounce a download to `http://169.254.169.254/`.
 */
export function redirectGuard(policy: EgressPolicy): (options: { url?: URL | string | undefined }) => void {
  return (options) => {
    if (options.url !== undefined) checkUrl(options.url, policy);
  };
}

const agentsByPolicy = new Map<string, { http: http.Agent; https: https.Agent }>();

/**
 * Keep-alive agents whose every socket was opened through {@link guardedLookup} for `policy`,
 * one pair per policy for the life of the process. Agent options override a request's own
 * `lookup`, so a request cannot opt out of the guard, and a socket opened under a looser
 * policy (or by any other client through the global agent) is never reused under this one.
 */
export function egressAgents(policy: EgressPolicy): { http: http.Agent; https: https.Agent } {
  const key = `${policy.allowPrivate}|${[...(policy.trustedAddresses ?? [])].sort().join(',')}`;
  let agents = agentsByPolicy.get(key);
  if (!agents) {
    const lookup = guardedLookup(policy);
    agents = { http: new http.Agent({ keepAlive: true, lookup }), https: new https.Agent({ keepAlive: true, lookup }) };
    agentsByPolicy.set(key, agents);
  }
  return agents;
}
