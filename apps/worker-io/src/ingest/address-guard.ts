import dns from 'node:dns';
import net from 'node:net';

/** Whether an IP address is loopback, private, link-local, unique-local, CGNAT or unspecified. */
export function isPrivateAddress(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a = 0, b = 0] = address.split('.').map(Number);
    return (
      a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224
    );
  }
  if (net.isIPv6(address)) {
    const lower = address.toLowerCase();
    if (lower === '::' || lower === '::1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    if (mapped?.[1]) return isPrivateAddress(mapped[1]);
    return /^(fc|fd|fe8|fe9|fea|feb|ff)/.test(lower);
  }
  return true;
}

export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
}

/**
 * A `dns.lookup` replacement for HTTP clients that refuses hosts resolving to private
 * addresses. Checking at connect time (not before the request) also defeats DNS rebinding.
 */
export function guardedLookup(allowPrivate: boolean): typeof dns.lookup {
  const lookup = (hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error);
      const list = addresses as dns.LookupAddress[];
      const blocked = list.find((entry) => isPrivateAddress(entry.address));
      if (blocked && !allowPrivate) {
        return callback(new BlockedAddressError(`${hostname} resolves to ${blocked.address}, a private address: downloads from it are not allowed`));
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(new Error(`${hostname} has no address`));
      return callback(null, first.address, first.family);
    });
  };
  return lookup as unknown as typeof dns.lookup;
}

/**
 * Refuses a URL whose host is a private IP literal (a lookup never happens for those, so
 * {@link guardedLookup} alone would not see it). Host names are checked at connect time.
 */
export function assertPublicHost(url: URL, allowPrivate: boolean): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && net.isIP(host) && isPrivateAddress(host)) {
    throw new BlockedAddressError(`${url.host} is a private address: requests to it are not allowed`);
  }
}
