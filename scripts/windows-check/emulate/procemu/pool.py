"""The non-paged pool: ExAllocatePool2 / ExFreePoolWithTag with every block
tracked by its tag, and freed memory that cannot be touched again.

Each block gets pages of its own, placed so that it ends at its last page's
end (rounded up to the 16 bytes ExAllocatePool2 aligns to), followed by an
unmapped guard page: a read or write past the end faults. A freed block's
pages stay mapped but lose every permission (UC_PROT_NONE) and are never
handed out again, so any access after ExFreePoolWithTag faults and is
reported as a use after free of that block (what Driver Verifier's special
pool does on Windows).
"""

import unicorn

from .guest import Stop

PAGE = 0x1000
POOL_BASE = 0xFFFFB00000000000    # a kernel-looking range of its own
POOL_FLAG_NON_PAGED = 0x40
POOL_FLAG_UNINITIALIZED = 0x2


def tag_text(tag):
    return tag.to_bytes(4, 'little').decode('latin-1')


class Block:
    def __init__(self, serial, base, pages, ptr, size, tag, owner=None):
        self.serial, self.base, self.pages, self.ptr, self.size, self.tag = serial, base, pages, ptr, size, tag
        self.owner = owner        # None: the driver's (ExAllocatePool2); else what the kernel allocated it for
        self.freed = False

    def describe(self):
        if self.owner:
            return '%s (%d bytes, at 0x%x)' % (self.owner, self.size, self.ptr)
        return 'block #%d (%d bytes, tag %s, at 0x%x)' % (self.serial, self.size, tag_text(self.tag), self.ptr)


class Pool:
    """`fail_at(n)` makes the n-th ExAllocatePool2 call (counted from 1 over
    the pool's life) return NULL."""

    def __init__(self, guest, log):
        self.guest, self.log = guest, log
        self.cursor = POOL_BASE
        self.blocks = []          # every block ever, in allocation order
        self.calls = 0            # ExAllocatePool2 calls, failed ones included
        self.failures = set()     # call numbers that return NULL
        self.injected = []        # call numbers that did
        self.skip_frees = 0       # detector test: this many frees are "lost"
        self.on_free = []         # called with each block before it is freed

    # -- ntoskrnl ------------------------------------------------------------------------
    def ExAllocatePool2(self, flags, size, tag):
        self.calls += 1
        size &= (1 << 64) - 1
        tag &= 0xFFFFFFFF
        if self.calls in self.failures:
            self.injected.append(self.calls)
            self.log('pool', 'ExAllocatePool2 #%d (%d bytes, %s) -> NULL (injected failure)'
                     % (self.calls, size, tag_text(tag)))
            return 0
        if not flags & POOL_FLAG_NON_PAGED:
            raise Stop('ExAllocatePool2 flags 0x%x: not POOL_FLAG_NON_PAGED' % flags, 'pool')
        if flags & POOL_FLAG_UNINITIALIZED:
            raise Stop('ExAllocatePool2 flags 0x%x: uninitialised memory was asked for' % flags, 'pool')
        if size == 0 or size > 1 << 28:
            raise Stop('ExAllocatePool2 of %d bytes' % size, 'pool')
        block = self._place(size, tag, self.calls, None)
        self.log('pool', 'ExAllocatePool2 #%d %d bytes tag %s -> 0x%x' % (block.serial, size, tag_text(tag), block.ptr))
        return block.ptr

    def _place(self, size, tag, serial, owner):
        rounded = (size + 15) & ~15
        pages = (rounded + PAGE - 1) // PAGE
        base = self.cursor
        self.cursor += (pages + 1) * PAGE          # + 1: the unmapped guard page
        self.guest.map(base, pages * PAGE)         # mapped pages are zero: ExAllocatePool2 zeroes
        block = Block(serial, base, pages, base + pages * PAGE - rounded, size, tag, owner)
        self.blocks.append(block)
        return block

    # -- the kernel's own blocks ----------------------------------------------------------
    def kernel_allocate(self, size, tag, owner):
        """A block the kernel allocates for itself (the I/O manager's system
        buffer): same placement and guard page, not an ExAllocatePool2 call of
        the driver's (not counted, never failed by a fault). Returns the Block."""
        block = self._place(size, tag, 0, owner)
        self.log('pool', '%s: %d bytes -> 0x%x' % (owner, size, block.ptr))
        return block

    def kernel_free(self, block):
        block.freed = True
        self.guest.protect(block.base, block.pages * PAGE, unicorn.UC_PROT_NONE)
        self.log('pool', 'freed %s' % block.describe())

    def driver_blocks(self):
        return [block for block in self.blocks if block.owner is None]

    def ExFreePoolWithTag(self, ptr, tag):
        tag &= 0xFFFFFFFF
        block = self.live_at(ptr, exact=True)
        if block is None:
            freed = self.block_at(ptr)
            what = 'freed twice: ' + freed.describe() if freed and freed.freed else 'not the start of a live pool block'
            raise Stop('ExFreePoolWithTag(0x%x): %s' % (ptr, what), 'pool')
        if block.owner:
            raise Stop('ExFreePoolWithTag(0x%x): the driver frees %s' % (ptr, block.describe()), 'pool')
        if tag != block.tag:
            raise Stop('ExFreePoolWithTag(0x%x, %s): %s was allocated with another tag'
                       % (ptr, tag_text(tag), block.describe()), 'pool')
        if self.skip_frees:
            self.skip_frees -= 1
            self.log('pool', 'ExFreePoolWithTag 0x%x: LOST by the detector test (the block stays live)' % ptr)
            return 0
        for observer in self.on_free:
            observer(block)
        block.freed = True
        self.guest.protect(block.base, block.pages * PAGE, unicorn.UC_PROT_NONE)
        self.log('pool', 'ExFreePoolWithTag 0x%x (%s)' % (ptr, block.describe()))
        return 0

    # -- queries -------------------------------------------------------------------------
    def block_at(self, address):
        """The block (live or freed) whose pages or guard page hold `address`."""
        for block in self.blocks:
            if block.base <= address < block.base + (block.pages + 1) * PAGE:
                return block
        return None

    def live_at(self, address, exact=False):
        for block in self.blocks:
            if not block.freed and (address == block.ptr if exact else block.ptr <= address < block.ptr + block.size):
                return block
        return None

    def live(self):
        return [block for block in self.blocks if not block.freed]

    def describe_fault(self, address):
        """Names what an invalid access at `address` touched, if it is pool."""
        block = self.block_at(address)
        if block is None:
            return None
        if block.freed and address < block.base + block.pages * PAGE:
            return 'use-after-free', 'use after free of ' + block.describe()
        if address >= block.base + block.pages * PAGE:
            return 'pool-overrun', 'past the end of ' + block.describe()
        return 'pool', 'inside ' + block.describe()
