"""The user-mode query (IOCTL_PROCNOTIFY_QUERY, docs/query.md) as the
emulator judges and prints it. Pure functions of bytes and numbers: no
emulator is needed, selftest.py tests them offline.

- `expected_completion`: the status and Information docs/query.md's table
  gives for an output buffer of N bytes, from the reply's own header.
- `buffer_problems`: the system buffer after the request: beyond the bytes
  written, zero where the driver took the buffer, untouched (the I/O
  manager's uninitialised pattern) where it did not, and nothing written
  past the buffer's end.
- `addresses`: any 8 bytes of a reply, at any offset, that fall in a range of
  the emulated kernel's memory (pool, image, framework, stack): a reply must
  hold no pointer.
- `heading`: the first line `simulate` prints for a query
  (crates/procnotify-sim/src/cli/query.rs, `QueryView::heading`), built from
  what the emulated request returned; the lines after it are
  `procnotify-ctl --reply FILE table`'s output for the bytes written.
"""

import struct

HEADER, ROW = 64, 32
MAGIC = int.from_bytes(b'PNQR', 'little')
STATUS_SUCCESS = 0x00000000
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_INVALID_DEVICE_REQUEST = 0xC0000010
UNINITIALISED = 0xCD          # what the emulated I/O manager fills a system buffer with


def nt_error(status):
    """NT_ERROR: severity 3 (0xC0000000 and up). The I/O manager copies
    nothing back to a METHOD_BUFFERED caller for such a status."""
    return status & 0xC0000000 == 0xC0000000


def header_fields(reply):
    """{'reply_size', 'rows_in_table', 'rows_written', 'capacity'} of a reply
    of at least 64 bytes, else None."""
    if len(reply) < HEADER:
        return None
    f = struct.unpack_from('<16I', reply)
    return {'magic': f[0], 'reply_size': f[4], 'rows_in_table': f[5], 'rows_written': f[6], 'capacity': f[8]}


def expected_completion(buffer, reply):
    """(status, Information) docs/query.md's "Statuses" table gives for an
    output buffer of `buffer` bytes (the input buffer empty, the code the
    query's), the whole reply's size and row count taken from `reply`'s
    header. None when `reply` has no header to read them from."""
    if buffer < HEADER:
        return STATUS_BUFFER_TOO_SMALL, 0
    h = header_fields(reply)
    if h is None:
        return None
    if buffer >= h['reply_size']:
        return STATUS_SUCCESS, h['reply_size']
    fit = min((buffer - HEADER) // ROW, h['rows_in_table'])
    return STATUS_BUFFER_OVERFLOW, HEADER + ROW * fit


def buffer_problems(after, input_length, output_length, took_buffer, information):
    """What is wrong with a system buffer's bytes `after` the request (the
    whole block as allocated, rounded up to 16 bytes): the input is at its
    start, the output buffer is its first `output_length` bytes."""
    problems = []
    size = max(input_length, output_length)
    untouched = bytes([UNINITIALISED])
    if took_buffer:
        tail = after[information:output_length]
        if tail.strip(b'\0'):
            first = information + next(i for i, b in enumerate(tail) if b)
            problems.append('byte %d of the output buffer, past the %d bytes written, is 0x%02x, not zero '
                            '(docs/query.md: every byte the driver does not set is zero)' % (first, information,
                                                                                          after[first]))
    else:
        body = after[input_length:size]
        if body.strip(untouched):
            first = input_length + next(i for i, b in enumerate(body) if b != UNINITIALISED)
            problems.append('byte %d of the output buffer was written although the driver never retrieved it '
                            '(nothing written, docs/query.md)' % first)
    slack = after[size:]
    if slack.strip(untouched):
        problems.append('%d of the %d bytes past the end of the %d-byte buffer were written'
                        % (sum(1 for b in slack if b != UNINITIALISED), len(slack), size))
    return problems


def addresses(reply, ranges):
    """[(offset, value)]: every 8 bytes of `reply`, at any byte offset, whose
    little-endian value lies in one of `ranges` ([start, end) pairs)."""
    found = []
    for offset in range(0, max(0, len(reply) - 7)):
        value = struct.unpack_from('<Q', reply, offset)[0]
        if any(start <= value < end for start, end in ranges):
            found.append((offset, value))
    return found


def status_words(value, names):
    """`STATUS_SUCCESS (0x00000000)`, as simulate's query heading writes a
    status (`values::status_words`); the bare value when not named."""
    name = names.get(value)
    return '%s (0x%08X)' % (name, value) if name else '0x%08X' % value


def heading(at, after, answer, names):
    """The heading line of a query. `at`: where it was asked (`line 7`,
    `end of session`); `after`: the step --query-after-each followed, or
    None; `answer`: None when procnotify is not loaded, else a dict with
    `buffer` (bytes), `capacity` (when sized as procnotify-ctl sizes it, else
    None), `status`, `bytes` (what the caller received) and `decoded` (False
    when procnotify-ctl could not decode them)."""
    what = '== query after %s (%s)' % (after, at) if after else '== query (%s)' % at
    if answer is None:
        return ('%s: procnotify is not loaded: no device interface, so `procnotify-ctl table` would exit 3 '
                '(not installed)' % what)
    sized = ''
    if answer['capacity'] is not None:
        sized = (' (64 + 32 \u00d7 capacity %d, as procnotify-ctl asks after its 64-byte probe)'
                 % answer['capacity'])
    data = answer['bytes']
    if not data:
        rows = 'no reply'
    elif not answer['decoded']:
        rows = 'a reply that does not decode'
    else:
        h = header_fields(data)
        rows = 'the header and %d of the table\'s %d rows' % (h['rows_written'], h['rows_in_table'])
    return '%s: IOCTL_PROCNOTIFY_QUERY into %d bytes%s: %s, %d bytes written: %s' % (
        what, answer['buffer'], sized, status_words(answer['status'], names), len(data), rows)
