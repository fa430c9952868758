import type dns from 'node:dns';
import {
  checkUrl,
  EgressRefusedError,
  egressAgents,
  guardedLookup,
  isPublicAddress,
  nonPublicReason,
  redirectGuard,
  type EgressPolicy,
} from '@clipline/shared';

const strict: EgressPolicy = { allowPrivate: false };

/** Addresses as a resolver or a socket reports them: every IANA special-purpose range, and public ones. */
const ADDRESSES: readonly (readonly [address: string, isPublic: boolean, because: RegExp | null])[] = [
  // IPv4 special-purpose registry, one row per range (and its edges where they are easy to get wrong).
  ['0.0.0.0', false, /this network/],
  ['0.255.255.255', false, /this network/],
  ['10.0.0.1', false, /private/],
  ['10.255.255.255', false, /private/],
  ['100.64.0.1', false, /carrier-grade/],
  ['100.127.255.254', false, /carrier-grade/],
  ['127.0.0.1', false, /loopback/],
  ['127.255.255.254', false, /loopback/],
  ['169.254.169.254', false, /link-local.*metadata/],
  ['172.16.0.1', false, /private/],
  ['172.31.255.255', false, /private/],
  ['192.0.0.8', false, /IETF protocol/],
  ['192.0.2.1', false, /documentation/],
  ['192.31.196.1', false, /AS112/],
  ['192.52.193.1', false, /AMT/],
  ['192.88.99.1', false, /6to4 relay/],
  ['192.168.1.1', false, /private/],
  ['192.175.48.1', false, /AS112/],
  ['198.18.0.1', false, /benchmarking/],
  ['198.19.255.255', false, /benchmarking/],
  ['198.51.100.7', false, /documentation/],
  ['203.0.113.9', false, /documentation/],
  ['224.0.0.251', false, /multicast/],
  ['239.255.255.250', false, /multicast/],
  ['240.0.0.1', false, /reserved/],
  ['255.255.255.255', false, /broadcast/],
  // IPv4 just outside those ranges, and well-known public resolvers.
  ['8.8.8.8', true, null],
  ['1.1.1.1', true, null],
  ['100.63.255.255', true, null],
  ['100.128.0.0', true, null],
  ['172.15.255.255', true, null],
  ['172.32.0.1', true, null],
  ['192.0.1.1', true, null],
  ['198.20.0.1', true, null],
  ['223.255.255.255', true, null],
  // IPv6 special-purpose registry.
  ['::', false, /unspecified/],
  ['::1', false, /loopback/],
  ['0:0:0:0:0:0:0:1', false, /loopback/],
  ['::7f00:1', false, /IPv4-compatible/],
  ['::8.8.8.8', false, /IPv4-compatible/],
  ['64:ff9b:1::a00:1', false, /local-use NAT64/],
  ['100::1', false, /discard/],
  ['2001::1', false, /Teredo/],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false, /Teredo/],
  ['2001:2::1', false, /IETF protocol/],
  ['2001:db8::1', false, /documentation/],
  ['2002:7f00:1::', false, /6to4/],
  ['2002:808:808::1', false, /6to4/],
  ['2620:4f:8000::1', false, /AS112/],
  ['3fff::1', false, /documentation/],
  ['5f00::1', false, /SRv6/],
  ['fc00::1', false, /unique local/],
  ['fd12:3456:789a::1', false, /unique local/],
  ['fe80::1', false, /link-local/],
  ['febf:ffff::1', false, /link-local/],
  ['fec0::1', false, /site-local/],
  ['ff02::1', false, /multicast/],
  ['4000::1', false, /global unicast/],
  ['fe80::1%eth0', false, /not an IP address/],
  // Mapped and NAT64 well-known prefix: judged by the embedded IPv4, in every notation.
  ['::ffff:127.0.0.1', false, /IPv4-mapped 127\.0\.0\.1, a loopback/],
  ['::ffff:7f00:1', false, /IPv4-mapped 127\.0\.0\.1/],
  ['0:0:0:0:0:ffff:7f00:0001', false, /IPv4-mapped 127\.0\.0\.1/],
  ['::ffff:a9fe:a9fe', false, /IPv4-mapped 169\.254\.169\.254, a link-local/],
  ['::ffff:10.0.0.1', false, /IPv4-mapped 10\.0\.0\.1/],
  ['::ffff:0.0.0.0', false, /IPv4-mapped 0\.0\.0\.0/],
  ['::ffff:8.8.8.8', true, null],
  ['::ffff:808:808', true, null],
  ['64:ff9b::7f00:1', false, /NAT64 of 127\.0\.0\.1/],
  ['64:ff9b::10.0.0.1', false, /NAT64 of 10\.0\.0\.1/],
  ['64:ff9b::8.8.8.8', true, null],
  // Public IPv6.
  ['2606:4700::1111', true, null],
  ['2001:4860:4860::8888', true, null],
  ['2a00:1450:4001:82b::200e', true, null],
  ['2001:200::1', true, null],
  // Not addresses at all.
  ['localhost', false, /not an IP address/],
  ['127.1', false, /not an IP address/],
  ['', false, /not an IP address/],
];

describe('isPublicAddress', () => {
  it.each(ADDRESSES)('%s → public %s', (address, isPublic, because) => {
    expect(isPublicAddress(address)).toBe(isPublic);
    if (because) expect(nonPublicReason(address)).toMatch(because);
  });
});

/**
 * URLs as users submit them. WHATWG URL (`new URL()`) turns every IPv4 notation into dotted
 * decimal and every IPv6 literal into compressed hex; `normalised` pins that, because the
 * policy relies on it instead of parsing hosts itself.
 */
const URLS: readonly (readonly [url: string, normalised: string, allowed: boolean])[] = [
  ['http://127.0.0.1:3000/a.mp4', '127.0.0.1', false],
  ['http://127.1/', '127.0.0.1', false],
  ['http://2130706433/', '127.0.0.1', false],
  ['http://0x7f000001/', '127.0.0.1', false],
  ['http://0x7f.1/', '127.0.0.1', false],
  ['http://0177.0.0.1/', '127.0.0.1', false],
  ['http://0177.1/', '127.0.0.1', false],
  ['http://127.0.0.1./', '127.0.0.1', false],
  ['http://%31%32%37.0.0.1/', '127.0.0.1', false],
  ['http://\uff11\uff12\uff17.0.0.1/', '127.0.0.1', false],
  ['http://0/', '0.0.0.0', false],
  ['http://0xa9fea9fe/latest/meta-data/', '169.254.169.254', false],
  ['http://169.254.169.254/', '169.254.169.254', false],
  ['http://10.1/', '10.0.0.1', false],
  ['http://[::1]:8080/', '[::1]', false],
  ['http://[0:0:0:0:0:0:0:1]/', '[::1]', false],
  ['http://[::ffff:127.0.0.1]:3000/', '[::ffff:7f00:1]', false],
  ['http://[::ffff:7f00:1]/', '[::ffff:7f00:1]', false],
  ['http://[::ffff:a9fe:a9fe]/', '[::ffff:a9fe:a9fe]', false],
  ['http://[0:0:0:0:0:ffff:169.254.169.254]/', '[::ffff:a9fe:a9fe]', false],
  ['http://[::127.0.0.1]/', '[::7f00:1]', false],
  ['http://[64:ff9b::127.0.0.1]/', '[64:ff9b::7f00:1]', false],
  ['http://[FE80::1]/', '[fe80::1]', false],
  ['http://[fd00::1]/', '[fd00::1]', false],
  ['https://localhost/', 'localhost', false],
  ['https://LOCALHOST./', 'localhost.', false],
  ['http://localhost%2e/', 'localhost.', false],
  ['http://media.localhost:8080/', 'media.localhost', false],
  ['http://media.localhost../', 'media.localhost..', false],
  ['http://\u24dbocalhost/', 'localhost', false],
  ['http://8.8.8.8/a.mp4', '8.8.8.8', true],
  ['https://1.1.1.1/', '1.1.1.1', true],
  ['http://134744072/', '8.8.8.8', true],
  ['http://[2606:4700::1111]/', '[2606:4700::1111]', true],
  ['http://[::ffff:8.8.8.8]/', '[::ffff:808:808]', true],
  ['https://cdn.example.com/talk.mp4', 'cdn.example.com', true],
  // A name is judged when it is resolved (guardedLookup), not here, even one that looks like an address.
  ['http://127.0.0.1.nip.io/', '127.0.0.1.nip.io', true],
  ['http://localhost.example.com/', 'localhost.example.com', true],
];

describe('checkUrl', () => {
  it.each(URLS)('%s (host %s) → allowed %s', (url, normalised, allowed) => {
    expect(new URL(url).hostname).toBe(normalised);
    if (allowed) expect(checkUrl(url, strict).hostname).toBe(normalised);
    else expect(() => checkUrl(url, strict)).toThrow(EgressRefusedError);
    // Private addresses are allowed when the operator says so (ALLOW_PRIVATE_SOURCES).
    expect(checkUrl(url, { allowPrivate: true }).hostname).toBe(normalised);
  });

  it.each(['ftp://8.8.8.8/a.mp4', 'file:///etc/passwd', 'gopher://8.8.8.8/', 'data:text/plain,hi', 'not a url'])('refuses %s whatever the policy', (url) => {
    expect(() => checkUrl(url, { allowPrivate: true })).toThrow(EgressRefusedError);
  });

  it('names the refused host and the setting in its message', () => {
    expect(() => checkUrl('http://[::ffff:a9fe:a9fe]/', strict)).toThrow(
      "[::ffff:a9fe:a9fe] is IPv4-mapped 169.254.169.254, a link-local address, where cloud metadata services answer (169.254.0.0/16): requests made on a user's behalf may only reach public addresses (ALLOW_PRIVATE_SOURCES)",
    );
  });

  it('lets exactly the trusted addresses through, not their neighbours', () => {
    const policy = { allowPrivate: false, trustedAddresses: ['10.0.0.5'] };
    expect(checkUrl('http://10.0.0.5/', policy).hostname).toBe('10.0.0.5');
    expect(() => checkUrl('http://10.0.0.6/', policy)).toThrow(EgressRefusedError);
    expect(() => checkUrl('http://localhost/', policy)).toThrow(/localhost name/);
  });

  it('checks redirect targets the same way, as a got beforeRedirect hook', () => {
    const hook = redirectGuard(strict);
    expect(() => hook({ url: new URL('http://[::ffff:7f00:1]/') })).toThrow(EgressRefusedError);
    expect(() => hook({ url: 'file:///etc/passwd' })).toThrow(EgressRefusedError);
    expect(() => hook({ url: new URL('https://cdn.example.com/') })).not.toThrow();
  });
});

/** Resolves through a fixed table, as a DNS server under an attacker's control could answer. */
function fixedResolver(answers: Record<string, string[]>) {
  return (hostname: string, _options: dns.LookupAllOptions, callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => {
    const found = answers[hostname];
    if (!found) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    return callback(
      null,
      found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

function lookupOnce(lookup: typeof dns.lookup, hostname: string, options: dns.LookupOptions = {}) {
  return new Promise<{ error: Error | null; address: unknown; family: unknown }>((resolve) => {
    lookup(hostname, options, (error, address, family) => resolve({ error, address, family }));
  });
}

describe('guardedLookup', () => {
  const resolver = fixedResolver({
    'cdn.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'rebind.example.com': ['93.184.215.14', '127.0.0.1'],
    'metadata.example.com': ['::ffff:169.254.169.254'],
  });

  it('passes public answers through, in both callback shapes', async () => {
    const lookup = guardedLookup(strict, resolver);
    expect(await lookupOnce(lookup, 'cdn.example.com')).toEqual({ error: null, address: '93.184.215.14', family: 4 });
    expect((await lookupOnce(lookup, 'cdn.example.com', { all: true })).address).toHaveLength(2);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    const lookup = guardedLookup(strict, resolver);
    const mixed = await lookupOnce(lookup, 'rebind.example.com');
    expect(mixed.error).toBeInstanceOf(EgressRefusedError);
    expect(mixed.error?.message).toMatch(/^rebind\.example\.com resolves to 127\.0\.0\.1, which is a loopback address/);
    expect((await lookupOnce(lookup, 'metadata.example.com')).error?.message).toMatch(/IPv4-mapped 169\.254\.169\.254/);
  });

  it('allows private answers when the policy does, and keeps resolver errors', async () => {
    expect((await lookupOnce(guardedLookup({ allowPrivate: true }, resolver), 'rebind.example.com')).error).toBeNull();
    expect((await lookupOnce(guardedLookup(strict, resolver), 'missing.example.com')).error).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('refuses localhost through the system resolver', async () => {
    const refused = await lookupOnce(guardedLookup(strict), 'localhost');
    expect(refused.error).toBeInstanceOf(EgressRefusedError);
  });
});

describe('egressAgents', () => {
  it('pools sockets per policy, never across policies', () => {
    expect(egressAgents({ allowPrivate: false })).toBe(egressAgents(strict));
    expect(egressAgents({ allowPrivate: true }).http).not.toBe(egressAgents(strict).http);
    expect(egressAgents({ allowPrivate: false, trustedAddresses: ['10.0.0.5'] }).https).not.toBe(egressAgents(strict).https);
  });
});
