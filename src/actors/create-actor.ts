/** Build an actor's logic from its role: the one place that knows every actor class. */
import type { ActorLogic, ActorRole, Topology } from './actor.js';
import { KvmExitHandler } from './kvm-exit/kvm-exit-handler.js';
import { RamBlockAttributesOwner } from './ram-block-attributes/owner.js';
import type { ActorSetup } from './run-config.js';
import { Vcpu } from './vcpu/vcpu.js';
import { VfioContainerActor } from './vfio-container/container-actor.js';

export function createActor(role: ActorRole, setup: ActorSetup): ActorLogic {
  switch (role) {
    case 'vcpu': return new Vcpu(setup);
    case 'kvm-exit': return new KvmExitHandler(setup);
    case 'ram-block-attributes': return new RamBlockAttributesOwner(setup);
    case 'vfio-container': return new VfioContainerActor(setup);
    default: {
      const unreachable: never = role;
      throw new Error(`unknown role ${String(unreachable)}`);
    }
  }
}

/** `vcpu2`, `c0`, `kvm`, `rba`: how actors are named to users. */
export function actorName(role: ActorRole, index: number): string {
  switch (role) {
    case 'vcpu': return `vcpu${index}`;
    case 'kvm-exit': return 'kvm';
    case 'ram-block-attributes': return 'rba';
    case 'vfio-container': return `c${index}`;
    default: return String(role);
  }
}

/** Every actor's name, by actor index (`kvm`, `rba`, `c0`.., `vcpu0`..). */
export function topologyNames(topology: Topology): string[] {
  const names: string[] = [];
  topology.containers.forEach((actor, i) => (names[actor] = actorName('vfio-container', i)));
  topology.vcpus.forEach((actor, i) => (names[actor] = actorName('vcpu', i)));
  names[topology.kvm] = actorName('kvm-exit', 0);
  names[topology.rba] = actorName('ram-block-attributes', 0);
  return names;
}
