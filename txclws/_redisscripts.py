# -*- test-case-name: tests.test_channels -*-
"""
The Lua scripts a L{txclws.redishub.RedisHub} runs in Redis, and the keys
they use.  Each script is one atomic step: nothing another process does
comes between its commands.  That is what orders a channel: a kept
message is added to the channel's stream and published in one step, so
every process hears the channel's messages in the order of their stream
ids.

Keys, under the hub's prefix C{PREFIX:DB:} (channel names follow):

  - C{history:CHANNEL}: the stream of kept messages; each entry has one
    field, C{t} (text) or C{b} (binary), whose value is the message;
  - C{history-start:CHANNEL}: the id of the first entry ever added to the
    stream (gone with the stream when Redis loses its data, which is how
    a resume from before that is known to be impossible);
  - C{presence:CHANNEL}: a hash of member key to member JSON; a member key
    starts with its process's id, C{PROCESS:N};
  - C{alive:PROCESS}: set with a TTL that the process refreshes (its
    heartbeat); a member whose process key expired is swept.

Messages on the channel's pub/sub channel C{PREFIX:DB:CHANNEL} start with
the publishing hub's 8-byte origin, then a kind byte: C{t}/C{b} (not kept:
the payload follows), C{T}/C{B} (kept: one byte of id length, the id, the
payload), C{j}/C{l} (a join or leave: the member count, a space, the
member JSON).

Trimming is from the head and messages are never deleted otherwise, so
the history reaches back to a position if nothing was ever trimmed
(C{XINFO STREAM}'s C{entries-added} is its length), or if the position is
not before the first entry held.  (So a position that is the last entry
trimmed counts as too old, though nothing after it is missing.)

@since: 0.2.0
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = [
    "JOIN",
    "LEAVE",
    "PUBLISH_KEPT",
    "READ_HISTORY",
    "SCRIPTS",
    "SWEEP",
    "Script",
]


@dataclass(frozen=True)
class Script:
    """
    A Lua script, and its SHA-1 (what C{EVALSHA} names it by).
    """

    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode("utf-8")).hexdigest()


#: KEYS: stream, start.  ARGV: size, max age in ms (0: none), field (t or
#: b), message, pub/sub channel, header (origin and T or B).
#: Returns the new entry's id.
PUBLISH_KEPT = Script(
    """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', ARGV[3], ARGV[4])
redis.call('SETNX', KEYS[2], id)
local age = tonumber(ARGV[2])
if age > 0 then
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  if cutoff > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', cutoff))
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. string.char(#id) .. id .. ARGV[4])
return id
"""
)

#: KEYS: stream, start.  ARGV: a position.  Returns {} when there is no
#: history, else {start, floor (positions from it on are reached), last
#: id, entries after the position}.
READ_HISTORY = Script(
    """
local start = redis.call('GET', KEYS[2])
if not start or redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
local first = fields['first-entry'] and fields['first-entry'][1]
local last = fields['last-generated-id'] or '0-0'
local floor = '0-0'
local added = fields['entries-added']
local trimmed = (added and added > fields['length']) or (not added and first ~= start)
if first and trimmed then floor = first end
return {start, floor, last, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
"""
)

#: KEYS: presence hash, process key.  ARGV: member key, member JSON,
#: pub/sub channel, header (origin and j), TTL in ms, process value.
JOIN = Script(
    """
redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[5])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  local count = redis.call('HLEN', KEYS[1])
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. count .. ' ' .. ARGV[2])
end
return 1
"""
)

#: KEYS: presence hash.  ARGV: member key, pub/sub channel, header
#: (origin and l).
LEAVE = Script(
    """
local member = redis.call('HGET', KEYS[1], ARGV[1])
if member and redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  local count = redis.call('HLEN', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. count .. ' ' .. member)
end
return 1
"""
)

#: KEYS: presence hash.  ARGV: process key prefix, pub/sub channel, header
#: (origin and l).  Drops (and announces the leave of) every member whose
#: process key expired; returns the JSON of the others.
SWEEP = Script(
    """
local all = redis.call('HGETALL', KEYS[1])
local alive, live = {}, {}
for i = 1, #all, 2 do
  local process = string.match(all[i], '^([^:]*):')
  if process and alive[process] == nil then
    alive[process] = redis.call('EXISTS', ARGV[1] .. process) == 1
  end
  if process and alive[process] then
    table.insert(live, all[i + 1])
  elseif redis.call('HDEL', KEYS[1], all[i]) == 1 then
    local count = redis.call('HLEN', KEYS[1])
    redis.call('PUBLISH', ARGV[2], ARGV[3] .. count .. ' ' .. all[i + 1])
  end
end
return live
"""
)

#: Every script, loaded on each new connection.
SCRIPTS = (PUBLISH_KEPT, READ_HISTORY, JOIN, LEAVE, SWEEP)
