/**
 * The protocol options of `run`, `explore` and `verify`: a preset
 * (`--protocol merged|fixed`) and one option per policy, each overriding
 * the preset's choice. Default: QEMU as merged.
 */
import {
  BITMAP_OPS, CONVERSION_LOCKS, LISTENER_LISTS, PROTOCOL_PRESETS, REGISTRATION_ORDERS,
  type ProtocolPolicy, type ProtocolPreset,
} from '../core/protocol-policy.js';
import { parseChoice } from './option-values.js';

/** `util.parseArgs` definitions (no defaults: absent means the preset's choice). */
export const PROTOCOL_OPTIONS = {
  protocol: { type: 'string' },
  'conversion-lock': { type: 'string' },
  'bitmap-ops': { type: 'string' },
  registration: { type: 'string' },
  'listener-list': { type: 'string' },
} as const;

export type ProtocolOptionValues = { readonly [K in keyof typeof PROTOCOL_OPTIONS]?: string | undefined };

const PRESETS = Object.keys(PROTOCOL_PRESETS) as ProtocolPreset[];

/** Help lines, aligned like the commands' own. */
export const PROTOCOL_HELP = `  --protocol P         ${PRESETS.join('|')} (default merged): the starting point of the four
                       policies below; fixed = bql, atomic, serialized, rcu
  --conversion-lock L  ${CONVERSION_LOCKS.join('|')}: none = QEMU as merged (each vCPU thread runs
                       kvm_convert_memory with nothing held); bql = kvm_convert_memory under the
                       BQL; rba-mutex = a mutex inside ram_block_attributes_state_change only
  --bitmap-ops B       ${BITMAP_OPS.join('|')}: set_bit/bitmap_set as merged (load a 64-bit word,
                       store it back), or their _atomic variants
  --registration R     ${REGISTRATION_ORDERS.join('|')}: racy = merged (registration on the main loop under
                       the BQL beside unlocked conversions); serialized keeps them apart
  --listener-list L    ${LISTENER_LISTS.join('|')}: free = merged (unregistration unlinks and frees a
                       listener a walk may stand on); rcu = RCU unlink, frees wait for walks`;

/** The protocol the options ask for. */
export function parseProtocolOptions(values: ProtocolOptionValues): ProtocolPolicy {
  const preset = PROTOCOL_PRESETS[values.protocol === undefined ? 'merged' : parseChoice<ProtocolPreset>('protocol', values.protocol, PRESETS)];
  return {
    conversionLock: values['conversion-lock'] === undefined ? preset.conversionLock : parseChoice('conversion-lock', values['conversion-lock'], CONVERSION_LOCKS),
    bitmapOps: values['bitmap-ops'] === undefined ? preset.bitmapOps : parseChoice('bitmap-ops', values['bitmap-ops'], BITMAP_OPS),
    registration: values.registration === undefined ? preset.registration : parseChoice('registration', values.registration, REGISTRATION_ORDERS),
    listenerList: values['listener-list'] === undefined ? preset.listenerList : parseChoice('listener-list', values['listener-list'], LISTENER_LISTS),
  };
}

/** Whether any protocol option was given (a mutant runs on every fix unless one is). */
export function protocolGiven(values: ProtocolOptionValues): boolean {
  return Object.keys(PROTOCOL_OPTIONS).some((k) => values[k as keyof ProtocolOptionValues] !== undefined);
}
