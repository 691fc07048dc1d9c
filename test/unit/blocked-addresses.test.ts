import { describe, expect, it } from 'vitest';
import { isBlockedAddress } from '../../src/http/blocked-addresses.ts';

describe('addresses no job may reach, whatever name resolves to them', () => {
  it.each([
    '169.254.169.254',
    '169.254.0.1',
    '100.100.100.200',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    'fe80::1',
    'FEBF::1',
    'fd00:ec2::254',
    '::',
    'ff02::1',
    '::ffff:169.254.169.254',
  ])('blocks %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '192.168.0.10',
    '157.240.1.35',
    '::1',
    '2a03:2880::1',
    '100.100.100.201',
  ])('lets %s through (allowHosts decides)', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  it('is not fooled by host names (only resolved addresses are judged)', () => {
    expect(isBlockedAddress('metadata.google.internal')).toBe(false);
  });
});
