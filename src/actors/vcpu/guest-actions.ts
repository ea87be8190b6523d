/**
 * What a guest workload asks its vCPU to do. A workload is a generator of
 * these, resumed with each action's result, so it reads top to bottom like
 * the guest code of a selftest.
 */

/**
 * Addresses: a workload sees its RAM as one array starting at `gpaBase`
 * (`gpa` = `gpaBase` + RAMBlock offset); the vCPU turns that into the
 * guest-physical addresses of the machine's layout. `owned`: no other vCPU
 * converts any page of the range while this action runs, so the result can
 * be checked against the request.
 */
export type GuestAction =
  /** TDG.VP.VMCALL<MapGPA> / KVM_HC_MAP_GPA_RANGE: convert a range; KVM exits once per 2 MiB chunk. */
  | { readonly kind: 'mapGpa'; readonly gpa: number; readonly size: number; readonly toPrivate: boolean; readonly owned?: boolean }
  /**
   * Touch every page of a range as private or shared memory. A page whose
   * KVM attribute does not match exits with KVM_EXIT_MEMORY_FAULT and is
   * converted first. Optionally writes a pattern.
   */
  | { readonly kind: 'access'; readonly gpa: number; readonly size: number; readonly private: boolean; readonly write?: number; readonly owned?: boolean }
  /** Ask the device behind container `container` to DMA into a buffer (identity IOVA = GPA). */
  | { readonly kind: 'dma'; readonly container: number; readonly gpa: number; readonly size: number; readonly pattern: number }
  /** The host side writes the shared view (QEMU or the selftest's host thread). */
  | { readonly kind: 'hostWrite'; readonly gpa: number; readonly size: number; readonly pattern: number }
  /** Check the contents of a range through one view. A mismatch is a `data-integrity` violation. */
  | { readonly kind: 'check'; readonly gpa: number; readonly size: number; readonly view: 'shared' | 'private'; readonly expect: number; readonly what: string };

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
  /** Conversions this vCPU should cause. */
  readonly budget: number;
  random(): number;
}
