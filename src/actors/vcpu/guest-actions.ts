/**
 * What a guest workload asks its vCPU to do. A workload is a generator of
 * these, resumed with each action's result, so it reads top to bottom like
 * the guest code of a selftest.
 */

/**
 * What the guest asks for; `label` names the selftest case it belongs to
 * (counted by case).
 *
 * Addresses: a workload sees its RAM as one array starting at `gpaBase`
 * (`gpa` = `gpaBase` + RAMBlock offset); the vCPU turns that into the
 * guest-physical addresses of the machine's layout. `owned`: no other vCPU
 * converts any page of the range while this action runs, so the result can
 * be checked against the request.
 */
export type GuestAction = ({ readonly label?: string } & GuestActionKind);

type GuestActionKind =
  /**
   * Convert a range: the platform's conversion request (TDX MapGPA, SNP
   * page state change, KVM_HC_MAP_GPA_RANGE); KVM exits as the platform
   * does (see conversion-exits.ts). The Linux selftest's flags: `fallocate`
   * (DO_FALLOCATE), and `punchHole` (SHARED | DO_FALLOCATE without
   * SET_ATTRIBUTES: one exit, a hole in guest_memfd, no conversion).
   */
  | {
    readonly kind: 'mapGpa'; readonly gpa: number; readonly size: number; readonly toPrivate: boolean;
    readonly fallocate?: boolean; readonly punchHole?: boolean; readonly owned?: boolean;
  }
  /**
   * Touch every page of a range as private or shared memory. A page whose
   * KVM attribute does not match exits with KVM_EXIT_MEMORY_FAULT and is
   * converted first. Optionally writes a pattern.
   */
  /**
   * `contested`: other vCPUs convert these pages both ways on purpose (a
   * malicious guest), so a page may fault again and again without anything
   * being wrong in the host: no refault check.
   */
  | { readonly kind: 'access'; readonly gpa: number; readonly size: number; readonly private: boolean; readonly write?: number; readonly owned?: boolean; readonly contested?: boolean }
  /** Ask the device behind container `container` to DMA into a buffer (identity IOVA = GPA). */
  | { readonly kind: 'dma'; readonly container: number; readonly gpa: number; readonly size: number; readonly pattern: number }
  /** The host side writes the shared view (QEMU or the selftest's host thread). */
  | { readonly kind: 'hostWrite'; readonly gpa: number; readonly size: number; readonly pattern: number }
  /**
   * Check the contents of a range through one view. A mismatch is a
   * `data-integrity` violation. `who` reads it (default the guest).
   */
  | {
    readonly kind: 'check'; readonly gpa: number; readonly size: number; readonly view: 'shared' | 'private'; readonly expect: number;
    readonly what: string; readonly who?: 'guest' | 'host';
  };

export interface ActionResult {
  /** 0, or the failing conversion's ret, or EXIT_VM_STOPPED. */
  readonly ret: number;
  /** Exits (conversions) this action caused. */
  readonly exits: number;
  /** For `dma`: the device access outcome. */
  readonly outcome?: string;
}

export type Workload = Generator<GuestAction, void, ActionResult>;

/** What a workload knows about its vCPU and the machine. */
export interface WorkloadContext {
  readonly vcpu: number;
  readonly vcpus: number;
  readonly containers: number;
  readonly guestMem: number;
  readonly gpaBase: number;
  readonly mode: 'legacy' | 'inplace';
  /** Whether the host frees the shared page on a conversion to private (QEMU, anonymous memory). */
  readonly sharedFreedOnPrivate: boolean;
  /** The selftest's expectations: `kvm` (its own host) or `qemu`. */
  readonly selftestExpect: 'kvm' | 'qemu';
  /** Conversions this vCPU should cause. */
  readonly budget: number;
  random(): number;
}
