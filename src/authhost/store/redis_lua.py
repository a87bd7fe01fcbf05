"""Lua scripts of the Redis store. Each touches keys of ONE hash slot (one account's tag), so
they run atomically on a single Redis and on Redis Cluster alike; the exceptions,
``SNAPSHOT_STANDALONE`` and the admin writes with their audit entry (``*_AUDITED``: a card's
change, a funds change, a credit limit, a ledger sync, a product), are used only against a
single Redis, where slots do not exist.

Account-slot keys (``KEYS`` order is fixed per script, see ``redis_keys.AccountKeys``):
account hash, card hashes, velocity sorted sets, holds hash, dedupe hash, journal hash and
journal id sorted sets (all entries of the account, and per card).
"""

from __future__ import annotations

from authhost.store.money import BALANCE_BOUND

# What a snapshot finding no card says when the stamp is gone too (redis_keys.Keys.stamp):
# answered 96 rather than 14, which would tell merchants the card does not exist.
STORE_LOST = (
    "Redis has lost this store's data (its stamp key is gone: restarted without"
    " persistence, flushed, or failed over to an empty replica; or the store is not set up"
    " yet: no product, account or card); restore it"
)
# What /readyz says when the stamp is another's than the one this process opened: Redis lost
# the data and a store was set up anew on it (products, accounts, cards created again).
STORE_REPLACED = (
    "Redis holds another store than the one this process opened (its stamp changed: the data"
    " was lost and the store set up anew); restart this process"
)

# The account hash's fields in the order the scripts return them (redis._account_row reads
# them by position: no field names to send and no dict to build per reply).
ACCOUNT_FIELDS = ("account_id", "currency", "kind", "balance", "credit_limit", "holds", "version")
_ACCOUNT_FIELDS_LUA = ", ".join(f"'{name}'" for name in ACCOUNT_FIELDS)

# money.BALANCE_BOUND and money.beyond_bound in Lua: a balance (either way) or holds going
# further from zero than the bound. Lua numbers are doubles, exact only below 2^53: with the
# values and the changes within 10^15 (the bound; a request's amount), every sum is exact.
_BOUND_LUA = f"""
local BOUND = {BALANCE_BOUND}
local function beyond_bound(now, change)
  local after = math.abs(now + change)
  return after > BOUND and after > math.abs(now)
end
"""

# The snapshot body: reads the account's slot through the k_* names its header defines.
# ARGV: now, retention_s, dedupe_key, original_key, ...; the header sets counted_arg (events of
# the card's velocity log the caller has counted) and known_version (the card's version the
# caller has parsed: its data comes back as '=' instead of the JSON), and the reply's last
# element is "counted used|log total" (0 without a card).
_SNAPSHOT_BODY = (
    """
local account = redis.call('HMGET', k_account, """
    + _ACCOUNT_FIELDS_LUA
    + """)
if not account[1] then account = false end
local card = false
local events = {}
local counted = 0
if has_card then
  card = redis.call('HMGET', k_card, 'data', 'pin_tries', 'version')
  if not card[1] then
    card = false
  elseif card[3] == known_version then
    card[1] = '='  -- unchanged since the caller parsed it: no JSON to send and decode again
  end
  -- velocity: only the log's events after the ARGV[6] the caller has counted already
  local pruned = tonumber(redis.call('GET', k_vpruned) or '0')
  local length = redis.call('LLEN', k_vlog)
  counted = tonumber(counted_arg)
  if counted > pruned + length then counted = 0 end  -- the log restarted: count it all again
  if counted == 0 then
    local now = tonumber(ARGV[1])
    events = redis.call('ZRANGEBYSCORE', k_velocity, now - tonumber(ARGV[2]), ARGV[1])
  end
  local start = counted - pruned
  if start < 0 then start = 0 end
  if start < length then
    local new = redis.call('LRANGE', k_vlog, start, -1)
    for i = 1, #new do events[#events + 1] = new[i] end
  end
  counted = string.format('%d', counted) .. '|' .. string.format('%d', pruned + length)
end
local previous = false
if ARGV[3] ~= '' then
  local jid = redis.call('HGET', k_dedupe, ARGV[3])
  if jid then previous = redis.call('HGET', k_journal, jid) end
end
local hold = false
if ARGV[4] ~= '' then hold = redis.call('HGET', k_holds, ARGV[4]) end
"""
)

# Cluster-safe: the caller resolved the PAN pointer; every key is declared and in one slot.
# KEYS: account, card, velocity, dedupe, holds, journal, velocity log, velocity pruned.
# ARGV 5: has_card (1/0), 6: velocity events counted already (0: none), 7: the card's version
# the caller has parsed ('' for none)
SNAPSHOT = (
    """
local k_account, k_card, k_velocity = KEYS[1], KEYS[2], KEYS[3]
local k_dedupe, k_holds, k_journal = KEYS[4], KEYS[5], KEYS[6]
local k_vlog, k_vpruned = KEYS[7], KEYS[8]
local has_card = ARGV[5] == '1'
local counted_arg = ARGV[6]
local known_version = ARGV[7]
"""
    + _SNAPSHOT_BODY
    + """
return {account, card, events, previous, hold, counted}
"""
)

# Single Redis only (no slots to respect): follows the PAN pointer itself and reads the
# product too, so a snapshot is ONE round trip. Key names mirror redis_keys.AccountKeys.
# KEYS: PAN pointer, products.  ARGV 5: key prefix, 6: velocity events counted already,
# 7: the card they were counted for, 8: 'card id|version' the caller has parsed ('' for none)
_SNAPSHOT_STANDALONE_BODY = (
    f"""
local ERR_LOST = "{STORE_LOST}"
"""
    + """
local pointer = redis.call('GET', KEYS[1])
if not pointer and redis.call('EXISTS', ARGV[5] .. ':{g}:stamp') == 0 then
  error({err = ERR_LOST})  -- Redis lost its data (redis_keys.Keys.stamp)
end
local card_id, account_id, product_id = '', '', ''
if pointer then
  card_id, account_id, product_id = string.match(pointer, '^([^|]*)|([^|]*)|(.*)$')
end
local base = ARGV[5] .. ':{a:' .. account_id .. '}'
local k_account, k_card = base .. ':account', base .. ':card:' .. card_id
local k_velocity, k_dedupe = base .. ':vel:' .. card_id, base .. ':dedupe'
local k_holds, k_journal = base .. ':holds', base .. ':journal'
local k_vlog, k_vpruned = base .. ':vlog:' .. card_id, base .. ':vlogoff:' .. card_id
local has_card = pointer ~= false
local counted_arg = ARGV[6]
if card_id ~= ARGV[7] then counted_arg = '0' end  -- the count was of another card
local known_version = ''
if ARGV[8] ~= '' then
  local known_card, version = string.match(ARGV[8], '^(.*)|([^|]*)$')
  if known_card == card_id then known_version = version end
end
"""
    + _SNAPSHOT_BODY
    + """
local product = false
if pointer then product = redis.call('HGET', KEYS[2], product_id) end
return {account, card, events, previous, hold, pointer, product, counted}
"""
)


def _as_function(name: str, body: str) -> str:
    """``body`` (a script reading KEYS and ARGV) as a Lua function ``name(K, A)``, so that one
    script call can run it for several requests (``_many``)."""
    body = body.replace("KEYS[", "K[").replace("ARGV[", "A[")
    return f"local function {name}(K, A)\n{body}\nend\n"


def _many(name: str, body: str, keys_each: int, args_each: int) -> str:
    """A script running ``body`` once per request: KEYS are each request's ``keys_each`` keys in
    turn, ARGV the count of requests then each request's ``args_each`` arguments; the reply
    has one element per request. Each run is under ``pcall``: a request whose run raises an
    error (Redis out of memory, a key of the wrong type) replies {'err', message} and the
    others still run, as they would have in a pipeline of one call each."""
    return (
        _as_function(name, body)
        + f"""local out = {{}}
for i = 0, tonumber(ARGV[1]) - 1 do
  local K, A = {{}}, {{}}
  for j = 1, {keys_each} do K[j] = KEYS[i * {keys_each} + j] end
  for j = 1, {args_each} do A[j] = ARGV[1 + i * {args_each} + j] end
  local ok, reply = pcall({name}, K, A)
  if ok then
    out[i + 1] = reply
  elseif type(reply) == 'table' and reply.err then  -- what redis.call raised
    out[i + 1] = {{'err', reply.err}}
  else
    out[i + 1] = {{'err', tostring(reply)}}
  end
end
return out
"""
    )


SNAPSHOT_STANDALONE = _SNAPSHOT_STANDALONE_BODY
# Several standalone snapshots in ONE script call: coredis costs far more CPU per command than
# Redis does per snapshot. Read-only. Guarded: a snapshot that raises (a key of the wrong type)
# fails alone, as it would in a call of its own, not every request read with it.
SNAPSHOT_STANDALONE_MANY = _many("snapshot", _SNAPSHOT_STANDALONE_BODY, 2, 8)

# KEYS: account, card, velocity, dedupe, holds, journal, journal_all, journal_card,
#       velocity log, velocity pruned, dedupe of every account (a single Redis; on a cluster
#       the account's dedupe again, so the script stays in one slot), the card's chip ATCs,
#       hold lives, review queue, every account's journal ids (a single Redis; on a cluster
#       the account's journal_all again), the card's 3-D Secure authentications used
# ARGV: 1 dedupe_key, 2 journal_id, 3 kind ('' hold post credit release), 4 amount,
#       5 require_funds (1/0), 6 hold match key (journal's for hold/post, movement's for
#       release), 7 ts, 8 hold_amount as given, 9 journal json (approved), 10 journal json
#       (funds failed), 11 velocity event ('' = none), 12 event approved (1/0),
#       13 prune velocity before (score), 14 the PIN ('' none checked, '+' a wrong one: the
#       card's counter goes up, 'L<limit>' a right one: refused (journal 34) when the counter
#       reached the limit meanwhile, else it is reset), 15 has_card (1/0),
#       16 the match key of the hold a completion (a post) releases ('' = none),
#       17 the chip cryptogram's ATC ('' = none), 18 journal json (ATC replayed), 19 forget
#       ATCs seen before (score), 20 the match key of the pre-authorisation an incremental
#       authorisation (a hold) adds to ('' = none), 21 how far ahead of the card's newest ATC
#       this one may be ('0' = no limit), 22 journal json (ATC too far ahead), 23 a PIN change:
#       the card's new JSON ('' = none), 24 the card version it was made from, 25 journal json
#       (the card changed meanwhile: the PIN stays), 26 '1' when the completion of 16 is one of
#       several (it releases at most its own amount), else '0', 27 seconds a new hold lives
#       beyond hold_days ('0' = none; kept in KEYS[13]), 28 '1' when the rules flagged the
#       entry for review (indexed in KEYS[14]), 29 the card without the issuer script
#       commands the answer delivers ('' = none), 30 the card version it was made from (the
#       card is left as it is when it changed meanwhile: the commands go with the next answer),
#       31 an approval's 3-D Secure authentication (ATN, '' = none), 32 journal json (the
#       authentication was used already), 33 forget the card's authentications before (score),
#       34 journal json (a right PIN, but wrong ones committed meanwhile locked the card),
#       35 what a partial reversal's hold keeps (its release is at most what it holds beyond),
#       36 the card's velocity events the decision counted ('' = no check): when the card
#       has more by now (KEYS[9] and KEYS[10]), nothing is written and the reply is 'stale',
#       37 journal json (the movement would take the balance or holds beyond BOUND: nothing
#       moves, and the reply's seventh element is 1), 38 '1' when the card change of 29 is
#       required (a reversal's): when the card is no longer at version 30, nothing is written
#       and the reply is 'stale'; else '' (29 is written only if the card is as read)
# Hold values are 'amount|posted|reversed|created_at' (posted '0' held, '1' posted, '3' money
# credited to the account, which its reversal takes back), and an increment's (posted '2')
# 'amount|2|reversed|created_at|parent match key'.
_COMMIT_BODY = (
    _BOUND_LUA
    + """
local everywhere = KEYS[11] ~= KEYS[4]
if ARGV[1] ~= '' then
  local prev = redis.call('HGET', KEYS[4], ARGV[1])
  if prev then return {'dup', redis.call('HGET', KEYS[6], prev)} end
  if everywhere then  -- the identifiers were used on another account (a single Redis only)
    local found = redis.call('HGET', KEYS[11], ARGV[1])
    if found then
      local other_jid, other_journal = string.match(found, '^([^|]*)|(.*)$')
      return {'dup', redis.call('HGET', other_journal, other_jid)}
    end
  end
end
if ARGV[36] ~= '' then
  local events = tonumber(redis.call('GET', KEYS[10]) or '0') + redis.call('LLEN', KEYS[9])
  if events ~= tonumber(ARGV[36]) then return {'stale'} end
end
if ARGV[38] ~= '' and redis.call('HGET', KEYS[2], 'version') ~= ARGV[30] then
  return {'stale'}  -- a reversal's card change over a card changed since its snapshot
end
local jid = ARGV[2]
local kind = ARGV[3]
local amount = tonumber(ARGV[4])
local hold_amount = tonumber(ARGV[8])
local replayed = 0  -- 1: the chip counter is refused (a replay, or 2: too far ahead)
if ARGV[17] ~= '' then
  -- a card's counter only goes up: one it used, or one below its newest, is a replayed
  -- cryptogram; one too far ahead of its newest was made in advance. The card hash keeps the
  -- newest; the sorted set, the counters of the last days (all that versions before the
  -- newest was kept had: a card they saw is still protected)
  local atc = tonumber(ARGV[17])
  local newest = tonumber(redis.call('HGET', KEYS[2], 'atc_newest') or '')
  if newest and atc <= newest then
    replayed = 1
  elseif newest and ARGV[21] ~= '0' and atc - newest > tonumber(ARGV[21]) then
    replayed = 2
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', '(' .. ARGV[19])
    if redis.call('ZADD', KEYS[12], 'NX', ARGV[7], ARGV[17]) == 0 then
      replayed = 1
    elseif redis.call('EXISTS', KEYS[2]) == 1 then
      redis.call('HSET', KEYS[2], 'atc_newest', ARGV[17])
    end
  end
  if replayed > 0 then
    kind = ''
    hold_amount = 0
  end
end
local pin_tries_now = 0
if ARGV[14] == '+' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'pin_tries', 1)  -- a guess counts, whatever else happens
  redis.call('HINCRBY', KEYS[2], 'version', 1)
elseif string.sub(ARGV[14], 1, 1) == 'L' and replayed == 0 then
  -- a right PIN: wrong ones committed since its snapshot (sent with it) may have locked it
  pin_tries_now = tonumber(redis.call('HGET', KEYS[2], 'pin_tries') or '0') or 0
  if pin_tries_now >= tonumber(string.sub(ARGV[14], 2)) then
    replayed = 5
    kind = ''
    hold_amount = 0
  end
end
if ARGV[23] ~= '' and replayed == 0 then
  -- a PIN change: the card with its new PIN reference, if nothing changed it since its snapshot
  if redis.call('HGET', KEYS[2], 'version') == ARGV[24] then
    redis.call('HSET', KEYS[2], 'data', ARGV[23], 'pin_tries', '0')
    redis.call('HINCRBY', KEYS[2], 'version', 1)
  else
    replayed = 3
    kind = ''
    hold_amount = 0
  end
end
if ARGV[31] ~= '' and replayed == 0 then
  local used = tonumber(redis.call('ZSCORE', KEYS[16], ARGV[31]) or '')
  if used and used >= tonumber(ARGV[33]) then
    replayed = 4  -- a CAVV whose authentication an earlier approval used: copied, or reused
    kind = ''
    hold_amount = 0
  end
end
local funds_ok = 1
local bound = 0  -- 1: refused, the balance or holds would go beyond BOUND (nothing moves)
local moved = 0
local dbal = 0  -- what the entry adds to the balance (journalled as balance_delta)
if kind ~= '' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'noaccount'} end
  local f = redis.call('HMGET', KEYS[1], 'kind', 'balance', 'credit_limit', 'holds')
  local credit = f[1] == 'credit'
  local balance, limit, held = tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  local otb = balance + limit - held  -- a debit account's limit: its arranged overdraft
  if credit then otb = limit - balance - held end
  local spend = -amount
  if credit then spend = amount end
  local dhold = 0
  if kind == 'hold' or kind == 'post' then
    if ARGV[5] == '1' and amount > otb then
      funds_ok = 0
    elseif (kind == 'hold' and beyond_bound(held, amount))
        or (kind == 'post' and beyond_bound(balance, spend)) then
      bound = 1
    else
      moved = 1
      if kind == 'hold' then dhold = amount else dbal = spend end
      if kind == 'post' and ARGV[16] ~= '' and ARGV[16] ~= ARGV[6] then
        -- a completion: release what its pre-authorisation still holds, in this same write
        local o = redis.call('HGET', KEYS[5], ARGV[16])
        if o then
          local a, p, r, c = string.match(o, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
          local left = tonumber(a) - tonumber(r)
          if p == '0' and left > 0 then
            -- one completion of several releases what it posts; the last, all that is left
            if ARGV[26] == '1' then left = math.min(left, amount) end
            dhold = -math.min(left, held)
            redis.call('HSET', KEYS[5], ARGV[16],
              a .. '|0|' .. string.format('%d', tonumber(r) + left) .. '|' .. c)
          end
        end
      end
      if ARGV[6] ~= '' then
        local posted, parent = '0', ''
        if kind == 'post' then posted = '1' end
        if kind == 'hold' and ARGV[20] ~= '' and ARGV[20] ~= ARGV[6] then
          -- an incremental authorisation: its pre-authorisation's hold grows by its amount,
          -- if that is still open; else it is held on its own
          local o = redis.call('HGET', KEYS[5], ARGV[20])
          if o then
            local a, p, r, c = string.match(o, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
            if p == '0' and tonumber(a) > tonumber(r) then
              -- its life is extended too: it expires hold_days after the newest increment
              local created = c
              if tonumber(ARGV[7]) > tonumber(c) then created = ARGV[7] end
              redis.call('HSET', KEYS[5], ARGV[20],
                string.format('%d', tonumber(a) + amount) .. '|0|' .. r .. '|' .. created)
              posted, parent = '2', '|' .. ARGV[20]
            end
          end
        end
        local h = redis.call('HGET', KEYS[5], ARGV[6])
        local prior, reversed, created = 0, '0', ARGV[7]
        if h then
          local a, _, r, c = string.match(h, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
          prior, reversed, created = tonumber(a), r, string.match(c, '^[^|]*')
        end
        redis.call('HSET', KEYS[5], ARGV[6], string.format('%d', prior + amount) .. '|' .. posted
          .. '|' .. reversed .. '|' .. created .. parent)
        if not h and posted == '0' and ARGV[27] ~= '0' then
          redis.call('HSET', KEYS[13], ARGV[6], ARGV[27])  -- a hotel's hold lives longer
        end
      end
    end
  elseif kind == 'credit' then
    if beyond_bound(balance, -spend) then
      bound = 1
    else
      moved = 1
      dbal = -spend
      if ARGV[6] ~= '' then  -- what its reversal finds and takes back (posted '3')
        redis.call('HSET', KEYS[5], ARGV[6], string.format('%d', amount) .. '|3|0|' .. ARGV[7])
      end
    end
  elseif kind == 'release' then
    local h = redis.call('HGET', KEYS[5], ARGV[6])
    hold_amount = 0
    if h then
      local a, p, r, c = string.match(h, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
      local release = math.min(amount, tonumber(a) - tonumber(r) - tonumber(ARGV[35]))
      if p == '2' and release > 0 then  -- an increment: its parent holds its amount too
        local parent = string.match(c, '^[^|]*|(.*)$')
        local o = parent and redis.call('HGET', KEYS[5], parent)
        release = 0
        if o then
          local pa, pp, pr, pc = string.match(o, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
          release = math.min(amount, tonumber(a) - tonumber(r) - tonumber(ARGV[35]),
            tonumber(pa) - tonumber(pr))
          if release > 0 then
            redis.call('HSET', KEYS[5], parent,
              pa .. '|' .. pp .. '|' .. string.format('%d', tonumber(pr) + release) .. '|' .. pc)
          end
        end
      end
      if release > 0 then
        if p == '1' then
          if credit then dbal = -release else dbal = release end
        elseif p == '3' then  -- a credit taken back, whatever the account holds now
          if credit then dbal = release else dbal = -release end
        else
          dhold = -math.min(release, held)
        end
        if dbal ~= 0 and beyond_bound(balance, dbal) then
          bound = 1  -- (only money posted or credited: an increment's parent stays as it was)
          dbal = 0
        else
          moved = 1
          hold_amount = -release
          redis.call('HSET', KEYS[5], ARGV[6],
            a .. '|' .. p .. '|' .. string.format('%d', tonumber(r) + release) .. '|' .. c)
        end
      end
    end
  end
  if moved == 1 then
    -- as integers: a Lua number may be a negative zero (-0 of an amount of 0, or of a
    -- release from holds of 0), which Redis refuses as "-0" (not an integer)
    redis.call('HINCRBY', KEYS[1], 'balance', string.format('%d', dbal))
    redis.call('HINCRBY', KEYS[1], 'holds', string.format('%d', dhold))
    redis.call('HINCRBY', KEYS[1], 'version', 1)
  end
end
if bound == 1 then hold_amount = 0 end
local journal = ARGV[9]
if funds_ok == 0 then journal = ARGV[10] end
if bound == 1 then journal = ARGV[37] end
if replayed == 1 then journal = ARGV[18] end
if replayed == 2 then journal = ARGV[22] end
if replayed == 3 then journal = ARGV[25] end
if replayed == 4 then journal = ARGV[32] end
if replayed == 5 then journal = ARGV[34] end
if ARGV[31] ~= '' and replayed == 0 and funds_ok == 1 and bound == 0 then  -- used up now
  redis.call('ZREMRANGEBYSCORE', KEYS[16], '-inf', '(' .. ARGV[33])
  redis.call('ZADD', KEYS[16], ARGV[7], ARGV[31])
end
-- anchored on the key: a text field that is itself "__HOLD__" is JSON like any other value
journal = string.gsub(journal, '"hold_amount":"__HOLD__"',
  '"hold_amount":' .. string.format('%d', hold_amount), 1)
journal = string.gsub(journal, '"balance_delta":"__BALANCE__"',
  '"balance_delta":' .. string.format('%d', dbal), 1)
redis.call('HSET', KEYS[6], jid, journal)
redis.call('ZADD', KEYS[7], jid, jid)
if KEYS[15] ~= KEYS[7] then redis.call('ZADD', KEYS[15], jid, jid .. '|' .. KEYS[6]) end
if ARGV[15] == '1' then redis.call('ZADD', KEYS[8], jid, jid) end
if ARGV[28] == '1' then redis.call('ZADD', KEYS[14], jid, jid) end  -- the review queue
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], jid)
  if everywhere then redis.call('HSET', KEYS[11], ARGV[1], jid .. '|' .. KEYS[6]) end
end
if ARGV[11] ~= '' then
  local approved = ARGV[12]
  if funds_ok == 0 or replayed > 0 or bound == 1 then approved = '0' end
  redis.call('RPUSH', KEYS[9], approved .. '|' .. ARGV[11])
  -- events older than the retention leave from the head (the log is in commit order, which
  -- is time order up to requests answered out of order; stragglers go on a later commit)
  local cutoff = tonumber(ARGV[13])
  local dropped = 0
  while true do
    local head = redis.call('LINDEX', KEYS[9], 0)
    if not head then break end
    local ts = tonumber(string.match(head, '^[^|]*|%[([^,]*),'))
    if ts == nil or ts >= cutoff then break end
    redis.call('LPOP', KEYS[9])
    dropped = dropped + 1
  end
  if dropped > 0 then redis.call('INCRBY', KEYS[10], dropped) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[13])  -- the pre-log history
end
if ARGV[29] ~= '' and replayed == 0 and redis.call('HGET', KEYS[2], 'version') == ARGV[30] then
  redis.call('HSET', KEYS[2], 'data', ARGV[29])  -- issuer scripts delivered: off the card
  redis.call('HINCRBY', KEYS[2], 'version', 1)
end
-- a right PIN resets the counter (a PIN change wrote the card, its tries with it)
if pin_tries_now > 0 and replayed == 0 and ARGV[23] == '' then
  redis.call('HSET', KEYS[2], 'pin_tries', '0')
  redis.call('HINCRBY', KEYS[2], 'version', 1)
end
local acc = false
if kind ~= '' then acc = redis.call('HMGET', KEYS[1], """
    + _ACCOUNT_FIELDS_LUA
    + """) end
return {'ok', funds_ok, string.format('%d', hold_amount), acc, replayed, string.format('%d', dbal),
  bound}
"""
)

COMMIT = _COMMIT_BODY
# Several commits in ONE script call (a single Redis: the keys of many accounts), each exactly
# as COMMIT runs it, in order; one that fails replies {'err', message} and changes what it had
# changed by then, as a failing COMMIT call does, and the next ones still run.
COMMIT_MANY = _many("commit", _COMMIT_BODY, 16, 38)

# KEYS: a wallet token's holder (a hash: card, since).  ARGV: the card claiming it, now, the
# holder it may replace ('': none). The claiming card is kept where no card or the replaced
# one is; the reply is the holder after, {card, since}.
CLAIM_TOKEN = """
local current = redis.call('HMGET', KEYS[1], 'card', 'since')
if (not current[1]) or current[1] == ARGV[3] then
  redis.call('HSET', KEYS[1], 'card', ARGV[1], 'since', ARGV[2])
  return {ARGV[1], ARGV[2]}
end
return current
"""

# KEYS: a wallet token's holder.  ARGV: the card letting it go. Deleted only while it holds it.
RELEASE_TOKEN = """
if redis.call('HGET', KEYS[1], 'card') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: an idempotency key, then the idempotency_written index (ARGV[4] 'result') or the
# idempotency_markers set ('marker').  ARGV: the value, now, the store's key (their member),
# what it is. The value is kept where nothing is: a request's placeholder indexed by its time
# (prunable), or a marker listed as one (never pruned); the reply is nil. Else the reply is
# what is there.
PUT_IF_ABSENT = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[4] == 'marker' then
  redis.call('SADD', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
return false
"""

# KEYS: an idempotency key, the idempotency_written index.  ARGV: the result, the placeholder
# prefix, '1' to forget a placeholder instead (the result is then ignored), now, the store's
# key. The result replaces a placeholder (or is kept where nothing is), indexed by its time; a
# result stored already stays, and so does a marker.
SETTLE_RESERVATION = """
local current = redis.call('GET', KEYS[1])
local pending = current and string.sub(current, 1, string.len(ARGV[2])) == ARGV[2]
if current and not pending then return 0 end
if ARGV[3] == '1' then
  if pending then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[5])
  end
  return 1
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
"""

# KEYS: an idempotency key, the idempotency_written index, the idempotency_markers set.
# ARGV: the placeholder prefix, the store's key. A result stored there leaves the index for
# the markers: kept for good from now on (1); nothing or a placeholder there: 0.
KEEP_RESULT = """
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# KEYS: an age index (idempotency_written, an account's funds_written), then the keys of the
# members ARGV[2...] (the same order; one slot). ARGV[1]: the cut. Each member still written
# before the cut (a result written again since has a newer time) goes, with its key; the
# reply is how many keys were deleted.
PRUNE_WRITTEN = """
local cut = tonumber(ARGV[1])
local deleted = 0
for i = 2, #KEYS do
  local written = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if written and tonumber(written) < cut then
    deleted = deleted + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return deleted
"""

# A lease's value is "since|owner" (redis_keys.Keys.lease): the owner is what follows the
# first "|" (since, a number, has none), whatever characters the owner's name has.
# A counter raised to ARGV[1] if it is below (never lowered): the journal's retention cut
# (prune_journal). KEYS[1]: the counter. Reply: its value after, as a decimal string.
RAISE_TO = """
local now = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', now))
return string.format('%d', now)
"""

_LEASE_OWNER_LUA = """
local function lease_owner(value)
  if not value then return nil end
  return string.match(value, '^[^|]*|(.*)$')
end
"""

# KEYS: a lease.  ARGV: the owner, its time to live (ms). The owner's lease lives that long
# again (1); another owner's stays as it is (0); none there (-1: expired or dropped meanwhile,
# the caller takes it with SET NX).
RENEW_LEASE = (
    _LEASE_OWNER_LUA
    + """
local value = redis.call('GET', KEYS[1])
if not value then return -1 end
if lease_owner(value) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: a lease.  ARGV: the owner. Deleted only if it is the owner's (1), else left (0): an
# owner whose lease expired and went to another must not end the other's.
DROP_LEASE = (
    _LEASE_OWNER_LUA
    + """
if lease_owner(redis.call('GET', KEYS[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
)

# Where an account or product script's own keys and arguments start (KEYS[K + 1], ARGV[A + 1]):
# alone, or after an audit entry's five keys and three arguments in its *_AUDITED variant
# (_AUDIT_WRITE and _audit_head_moved read KEYS[1..5] and ARGV[1..3]).
_ALONE = "local K, A = 0, 0\n"
_AFTER_AUDIT = "local K, A = 5, 3\n"

# KEYS[K+1]: products hash.  ARGV[A+1..]: product id, new data, the version the change was
# made from ('': none, written over whatever is stored; '-1', interface.NEW_PRODUCT: only if
# none has the id). 1 when written, 0 when the stored product is missing or at another version
# (or, for a new one, there).
_PUT_PRODUCT_CHECKS = """
if ARGV[A + 3] == '-1' then
  if redis.call('HEXISTS', KEYS[K + 1], ARGV[A + 1]) == 1 then return 0 end
elseif ARGV[A + 3] ~= '' then
  local current = redis.call('HGET', KEYS[K + 1], ARGV[A + 1])
  if not current then return 0 end
  local version = cjson.decode(current)['version'] or 0
  if tostring(version) ~= ARGV[A + 3] then return 0 end
end
"""
_PUT_PRODUCT_WRITE = "redis.call('HSET', KEYS[K + 1], ARGV[A + 1], ARGV[A + 2])\n"
PUT_PRODUCT = _ALONE + _PUT_PRODUCT_CHECKS + _PUT_PRODUCT_WRITE + "return 1\n"

# KEYS: card hash.  ARGV: the PAN ciphertext expected, the new one.
# Returns 1 when replaced, 0 when the ciphertext changed meanwhile, -1 when the card is missing.
RESEAL_PAN = """
local current = redis.call('HGET', KEYS[1], 'pan')
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pan', ARGV[2])
return 1
"""

# KEYS: the account's journal hash.  ARGV: journal id, the entry's JSON expected, the new one.
# Returns 1 when replaced, 0 when the entry changed meanwhile, -1 when it is missing (pruned).
REPLACE_JOURNAL_ENTRY = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return -1 end
if current ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: card hash.  ARGV: expected version, data, pin_tries, account_id, state
# Returns the new version, -1 when the card is missing, -2 when the version is stale.
UPDATE_CARD = """
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'pin_tries', ARGV[3], 'version', nv,
  'account_id', ARGV[4], 'state', ARGV[5])
return nv
"""

# A same-PAN successor takes over the PAN (a renewal activated): velocity is the card
# number's, so the predecessor's events of the window are copied into the successor's history
# set (read with its log when a process first counts it). Members carry their journal id, so
# copying twice adds nothing. KEYS: old log, old history set, new history set. ARGV: cutoff.
HAND_OVER_VELOCITY = """
local copied = 0
local old = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES')
for i = 1, #old, 2 do
  copied = copied + redis.call('ZADD', KEYS[3], old[i + 1], old[i])
end
local cutoff = tonumber(ARGV[1])
for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ts = tonumber(string.match(item, '^[^|]*|%[([^,]*),'))
  if ts ~= nil and ts >= cutoff then
    copied = copied + redis.call('ZADD', KEYS[3], ts, item)
  end
end
return copied
"""

# KEYS: old card hash, new card hash, account's card list.
# ARGV: old expected version, old data, old pin_tries, old state, new data, new pin_tries,
#       new version, new ciphertext, new account id, new state, new seq, new card id
REPLACE_CARD = """
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -3 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'pin_tries', ARGV[3], 'version', tonumber(v) + 1,
  'state', ARGV[4])
redis.call('HSET', KEYS[2], 'data', ARGV[5], 'pin_tries', ARGV[6], 'version', ARGV[7],
  'pan', ARGV[8], 'account_id', ARGV[9], 'state', ARGV[10])
redis.call('ZADD', KEYS[3], ARGV[11], ARGV[12])
return tonumber(v) + 1
"""

# The entry numbered and indexed (KEYS[1..4]: audit hash, all ids, subject ids, sequence;
# ARGV[1]: its JSON with the id's placeholder): the body every audit append shares.
_AUDIT_APPEND = """
local id = redis.call('INCR', KEYS[4])
local text = string.gsub(ARGV[1], '"audit_id":"__ID__"', '"audit_id":' .. tostring(id), 1)
redis.call('HSET', KEYS[1], id, text)
redis.call('ZADD', KEYS[2], id, id)
redis.call('ZADD', KEYS[3], id, id)
"""

# KEYS: audit hash, all ids, subject ids, sequence.  ARGV: json-with-placeholder, subject
APPEND_AUDIT = _AUDIT_APPEND + "return id\n"

# KEYS: as APPEND_AUDIT, then the chain's head.  ARGV: the entry's JSON, the head its chain
# value was sealed after ("" for none), that value.
# A compare-and-set: 0 (nothing written) when another writer moved the head meanwhile, so
# the caller seals after the new head and tries again: the writers make one chain.
APPEND_AUDIT_CHAINED = (
    """
local head = redis.call('GET', KEYS[5]) or ''
if head ~= ARGV[2] then return 0 end
"""
    + _AUDIT_APPEND
    + """
redis.call('SET', KEYS[5], ARGV[3])
return id
"""
)


# An admin write and its audit entry in one script: both or neither (a card's change here,
# the account and product writes below). SINGLE REDIS ONLY: the card or account is in its
# account's slot, the products in {g} and the audit log in its own, which a cluster refuses
# in one script (there the entry follows the write). KEYS[1..5] are APPEND_AUDIT_CHAINED's
# (audit hash, all ids, subject ids, sequence, chain head), the write's own from KEYS[6];
# ARGV[1..3] the entry's JSON, the head its chain value was sealed after ("" for none) and
# that value ("": unsealed, the head neither checked nor moved), the write's own from
# ARGV[4]. Every check comes before the first write (a script that fails midway keeps what
# it wrote). The card scripts answer -1 the card is missing, -2 its version is stale, -3
# another writer moved the head (the caller seals after the new one and tries again);
# nothing is written then. Else the card's new version.
def _audit_head_moved(reply: str) -> str:
    """The check that the chain's head is the one the entry was sealed after: else the
    script answers ``reply`` (nothing written)."""
    return (
        "if ARGV[3] ~= '' and (redis.call('GET', KEYS[5]) or '') ~= ARGV[2] then "
        f"return {reply} end\n"
    )


_AUDIT_WRITE = (
    _AUDIT_APPEND
    + """
if ARGV[3] ~= '' then redis.call('SET', KEYS[5], ARGV[3]) end
"""
)


def _more_entries(at: int) -> str:
    """Further entries on the first one's subject (store.update_card's ``more``), each
    chained after the one before it: ARGV[at] how many ('' or none: 0), then each one's JSON
    with the id's placeholder and its chain value ('' unsealed)."""
    return f"""
for i = 1, tonumber(ARGV[{at}] or '0') or 0 do
  local more_id = redis.call('INCR', KEYS[4])
  local more_text = string.gsub(ARGV[{at} + 2 * i - 1], '"audit_id":"__ID__"',
    '"audit_id":' .. tostring(more_id), 1)
  redis.call('HSET', KEYS[1], more_id, more_text)
  redis.call('ZADD', KEYS[2], more_id, more_id)
  redis.call('ZADD', KEYS[3], more_id, more_id)
  if ARGV[{at} + 2 * i] ~= '' then redis.call('SET', KEYS[5], ARGV[{at} + 2 * i]) end
end
"""


# UPDATE_CARD with its entry. KEYS[6]: card hash.  ARGV[4..8]: UPDATE_CARD's; ARGV[9..]:
# further entries on the card (_more_entries).
UPDATE_CARD_AUDITED = (
    """
local v = redis.call('HGET', KEYS[6], 'version')
if not v then return -1 end
if v ~= ARGV[4] then return -2 end
"""
    + _audit_head_moved("-3")
    + """
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[6], 'data', ARGV[5], 'pin_tries', ARGV[6], 'version', nv,
  'account_id', ARGV[7], 'state', ARGV[8])
"""
    + _AUDIT_WRITE
    + _more_entries(9)
    + "return nv\n"
)

# A card re-linked to another account, with its entry: its hash moves to the new account's
# key, the account's card lists, the card's home and (when it names this card) the PAN's
# pointer follow. KEYS[6..12]: old card hash, new card hash, old account's cards, new
# account's cards, the card's home, every card's list, the PAN's pointer.  ARGV[4..10]:
# expected version, data, pin_tries, the new account id, state, card id, the new pointer;
# ARGV[11..]: further entries on the card (_more_entries).
MOVE_CARD_AUDITED = (
    """
local v = redis.call('HGET', KEYS[6], 'version')
if not v then return -1 end
if v ~= ARGV[4] then return -2 end
local pan = redis.call('HGET', KEYS[6], 'pan')
if not pan then return -1 end
"""
    + _audit_head_moved("-3")
    + """
local nv = tonumber(v) + 1
local seq = redis.call('ZSCORE', KEYS[11], ARGV[9]) or 0
redis.call('HSET', KEYS[7], 'data', ARGV[5], 'pin_tries', ARGV[6], 'version', nv, 'pan', pan,
  'account_id', ARGV[7], 'state', ARGV[8])
redis.call('ZADD', KEYS[9], seq, ARGV[9])
redis.call('SET', KEYS[10], ARGV[7])
local pointer = redis.call('GET', KEYS[12])
if pointer and string.sub(pointer, 1, #ARGV[9] + 1) == ARGV[9] .. '|' then
  redis.call('SET', KEYS[12], ARGV[10])
end
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[8], ARGV[9])
"""
    + _AUDIT_WRITE
    + _more_entries(11)
    + "return nv\n"
)

# PUT_PRODUCT with its entry: -3 another writer moved the head (nothing written).
PUT_PRODUCT_AUDITED = (
    _AFTER_AUDIT
    + _PUT_PRODUCT_CHECKS
    + _audit_head_moved("-3")
    + _PUT_PRODUCT_WRITE
    + _AUDIT_WRITE
    + "return 1\n"
)


# A second entry after _AUDIT_WRITE's, chained after it (a replacement's: the old card's
# entry, then the new card's issue): KEYS[6] its subject's ids, ARGV[4] its JSON with the id's
# placeholder, ARGV[5] its chain value ('' unsealed: the head left alone).
_SECOND_AUDIT_WRITE = """
local id2 = redis.call('INCR', KEYS[4])
local text2 = string.gsub(ARGV[4], '"audit_id":"__ID__"', '"audit_id":' .. tostring(id2), 1)
redis.call('HSET', KEYS[1], id2, text2)
redis.call('ZADD', KEYS[2], id2, id2)
redis.call('ZADD', KEYS[6], id2, id2)
if ARGV[5] ~= '' then redis.call('SET', KEYS[5], ARGV[5]) end
"""

# A card's issue with its entry (store.create_card): the card's id and PAN claimed, the card
# numbered, stored and listed. KEYS[6..11]: the card's home, the PAN's pointer, the card
# sequence, the card's hash, the account's cards, every card's list.  ARGV[4..]: the account
# id, the PAN's pointer value, the card id, then the card hash's fields and values. 1 when
# created; -1 the card id is taken, -2 the PAN is, -3 another writer moved the head (nothing
# written).
CREATE_CARD_AUDITED = (
    """
if redis.call('EXISTS', KEYS[6]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[7]) == 1 then return -2 end
"""
    + _audit_head_moved("-3")
    + """
redis.call('SET', KEYS[6], ARGV[4])
redis.call('SET', KEYS[7], ARGV[5])
local seq = redis.call('INCR', KEYS[8])
redis.call('HSET', KEYS[9], unpack(ARGV, 7))
redis.call('ZADD', KEYS[10], seq, ARGV[6])
redis.call('ZADD', KEYS[11], seq, ARGV[6])
"""
    + _AUDIT_WRITE
    + "return 1\n"
)

# REPLACE_CARD with the claims, the listing and the PAN's pointer, and two entries (the old
# card's, then the new card's issue: KEYS[1..5] and ARGV[1..3] the first's, KEYS[6] and
# ARGV[4..5] the second's, _SECOND_AUDIT_WRITE). KEYS[7..13]: old card hash, new card hash,
# the account's cards, the new card's home, the new card's PAN pointer, the card sequence,
# every card's list.  ARGV[6..18]: old expected version, old data, old pin_tries, old state,
# new data, new pin_tries, new version, new ciphertext, account id, new state, new card id,
# the PAN's pointer value for it, and what to do with the pointer: 'claim' (a new PAN: only
# if free), 'move' (the same PAN, which now means the new card), 'keep'. The old card's new
# version; -1 it is missing, -2 stale, -3 another writer moved the head, -4 the new card id
# is taken, -5 the new PAN is (nothing written).
REPLACE_CARD_AUDITED = (
    """
local v = redis.call('HGET', KEYS[7], 'version')
if not v then return -1 end
if v ~= ARGV[6] then return -2 end
if redis.call('EXISTS', KEYS[10]) == 1 or redis.call('EXISTS', KEYS[8]) == 1 then return -4 end
if ARGV[18] == 'claim' and redis.call('EXISTS', KEYS[11]) == 1 then return -5 end
"""
    + _audit_head_moved("-3")
    + """
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[7], 'data', ARGV[7], 'pin_tries', ARGV[8], 'version', nv,
  'state', ARGV[9])
redis.call('HSET', KEYS[8], 'data', ARGV[10], 'pin_tries', ARGV[11], 'version', ARGV[12],
  'pan', ARGV[13], 'account_id', ARGV[14], 'state', ARGV[15])
redis.call('SET', KEYS[10], ARGV[14])
if ARGV[18] ~= 'keep' then redis.call('SET', KEYS[11], ARGV[17]) end
local seq = redis.call('INCR', KEYS[12])
redis.call('ZADD', KEYS[9], seq, ARGV[16])
redis.call('ZADD', KEYS[13], seq, ARGV[16])
"""
    + _AUDIT_WRITE
    + _SECOND_AUDIT_WRITE
    + "return nv\n"
)

# A marker kept for good (store.put_marker) with its entry, only where nothing is under its
# key. KEYS[6..7]: the idempotency key, the markers' set.  ARGV[4..5]: the marker's JSON, the
# store's key. 1 when kept, 0 when something is there, -3 another writer moved the head
# (nothing written either way).
PUT_MARKER_AUDITED = (
    """
if redis.call('EXISTS', KEYS[6]) == 1 then return 0 end
"""
    + _audit_head_moved("-3")
    + """
redis.call('SET', KEYS[6], ARGV[4])
redis.call('SADD', KEYS[7], ARGV[5])
"""
    + _AUDIT_WRITE
    + "return 1\n"
)

# A named list's whole content with its entry (store.put_list), made from the values the list
# held when read: written only if it holds them still. KEYS[6..7]: the lists' names, the list's
# values.  ARGV[4..]: the list's name, how many values it was read with (n), those n values,
# then the new values. 1 when written; -4 the list moved since read (the caller reads it again
# and makes its entry again); -3 another writer moved the head (nothing written either way).
PUT_LIST_AUDITED = (
    """
local n = tonumber(ARGV[5])
if redis.call('SCARD', KEYS[7]) ~= n then return -4 end
for i = 6, 5 + n do
  if redis.call('SISMEMBER', KEYS[7], ARGV[i]) == 0 then return -4 end
end
"""
    + _audit_head_moved("-3")
    + """
redis.call('SADD', KEYS[6], ARGV[4])
redis.call('DEL', KEYS[7])
for i = 6 + n, #ARGV, 500 do
  redis.call('SADD', KEYS[7], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
"""
    + _AUDIT_WRITE
    + "return 1\n"
)

# A fraud report (store.put_fraud_report), numbered with the next report id (never below one
# given before). KEYS[K+1..]: the reports hash, the report ids, the report id counter.
# ARGV[A+1..]: the journal id, the report's JSON with '"report_id":0}' at its end. Its id.
_FRAUD_REPORT_WRITE = """
local rid = redis.call('INCR', KEYS[K + 3])
local top = redis.call('ZREVRANGE', KEYS[K + 2], 0, 0, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= rid then
  rid = tonumber(top[2]) + 1
  redis.call('SET', KEYS[K + 3], string.format('%d', rid))
end
local stamped = '"report_id":' .. string.format('%d', rid) .. '}'
local report = string.gsub(ARGV[A + 2], '"report_id":0}$', stamped, 1)
redis.call('HSET', KEYS[K + 1], ARGV[A + 1], report)
redis.call('ZADD', KEYS[K + 2], rid, ARGV[A + 1])
"""
PUT_FRAUD_REPORT = _ALONE + _FRAUD_REPORT_WRITE + "return rid\n"
# With its entry, made from the report it replaces (ARGV[A + 3]: that report's JSON as read,
# '' for none): -4 the entry's report changed since read (the caller reads it again and makes
# the entry again), -3 another writer moved the head (nothing written either way).
PUT_FRAUD_REPORT_AUDITED = (
    _AFTER_AUDIT
    + """
if (redis.call('HGET', KEYS[K + 1], ARGV[A + 1]) or '') ~= ARGV[A + 3] then return -4 end
"""
    + _audit_head_moved("-3")
    + _FRAUD_REPORT_WRITE
    + _AUDIT_WRITE
    + "return rid\n"
)

# A new account with its entry (store.create_account): only where no account has its id.
# KEYS[6..7]: the account's hash, every account's ids.  ARGV[4..]: the account id, then its
# fields and values. 1 when created, 0 when the id is taken, -3 another writer moved the head
# (nothing written either way).
CREATE_ACCOUNT_AUDITED = (
    """
if redis.call('HEXISTS', KEYS[6], 'account_id') == 1 then return 0 end
"""
    + _audit_head_moved("-3")
    + """
redis.call('HSET', KEYS[6], unpack(ARGV, 5))
redis.call('ZADD', KEYS[7], 0, ARGV[4])
"""
    + _AUDIT_WRITE
    + "return 1\n"
)


# An account's write made with its audit entry (the store's AccountAudit): its last check,
# after its own refusals and before its first write. The account's balance and credit limit
# are still those its entry was made from (ARGV[A + at], ARGV[A + at + 1]; '' when there is
# no entry: no check), else {'moved'}; and, in the *_AUDITED variant, the chain's head is
# the one the entry was sealed after, else {'head'} (another writer's entry landed). Nothing
# is written then: the caller reads the account and the head again, makes its entry again and
# sends it again (only 'moved' counts towards ACCOUNT_AUDIT_TRIES: a moved head is another
# writer's progress, retried as a card's change or a plain append retries it).
def _account_moved(at: int, audited: bool) -> str:
    check = f"""
if ARGV[A + {at}] ~= '' then
  local was = redis.call('HMGET', KEYS[K + 1], 'balance', 'credit_limit')
  if tonumber(was[1]) ~= tonumber(ARGV[A + {at}])
     or tonumber(was[2]) ~= tonumber(ARGV[A + {at + 1}]) then
    return {{'moved'}}
  end
end
"""
    return check + (_audit_head_moved("{'head'}") if audited else "")


def _account_scripts(checks: str, at: int, write: str, reply: str) -> tuple[str, str]:
    """An account script alone (its entry, if any, is appended after it: Redis Cluster) and
    with its entry (a single Redis): ``checks`` refuse, ``write`` writes, ``reply`` answers."""
    alone = _ALONE + checks + _account_moved(at, audited=False) + write + reply
    together = (
        _AFTER_AUDIT + checks + _account_moved(at, audited=True) + write + _AUDIT_WRITE + reply
    )
    return alone, together


# KEYS[K+1..]: disputes hash, disputes-by-entry hash, open disputes' ids, every dispute's id,
# the disputes by card (one slot).  ARGV[A+1..]: journal id, dispute id, JSON, state, card id.
# The entry's claim and the dispute's record together, or neither: 0 when the entry has one.
_OPEN_DISPUTE_CHECKS = """
if redis.call('HEXISTS', KEYS[K + 2], ARGV[A + 1]) == 1 then return 0 end
"""
_OPEN_DISPUTE_WRITE = """
redis.call('HSET', KEYS[K + 2], ARGV[A + 1], ARGV[A + 2])
redis.call('HSET', KEYS[K + 1], ARGV[A + 2], ARGV[A + 3])
if ARGV[A + 4] == 'open' then redis.call('ZADD', KEYS[K + 3], 0, ARGV[A + 2]) end
redis.call('ZADD', KEYS[K + 4], 0, ARGV[A + 2])
redis.call('ZADD', KEYS[K + 5], 0, ARGV[A + 5] .. '|' .. ARGV[A + 2])
"""
OPEN_DISPUTE = _ALONE + _OPEN_DISPUTE_CHECKS + _OPEN_DISPUTE_WRITE + "return 1\n"
# With its entry (store.open_dispute's ``audit``): -3 another writer moved the head (nothing
# written).
OPEN_DISPUTE_AUDITED = (
    _AFTER_AUDIT
    + _OPEN_DISPUTE_CHECKS
    + _audit_head_moved("-3")
    + _OPEN_DISPUTE_WRITE
    + _AUDIT_WRITE
    + "return 1\n"
)

# KEYS[K+1..]: disputes hash, open disputes' ids.  ARGV[A+1..]: dispute id, the version the
# change was made from ('' for none: written whatever is stored), new JSON, its state, and
# optionally '1': only over a stored dispute, version or not (a change with its entry on a
# cluster, appended after: as the audited script, never a dispute made up by the step).
# Returns 1 when written, 0 when the stored dispute is at another version, -1 when missing.
_UPDATE_DISPUTE_CHECKS = """
local current = redis.call('HGET', KEYS[K + 1], ARGV[A + 1])
if ARGV[A + 2] ~= '' or ARGV[A + 5] == '1' then
  if not current then return -1 end
end
if ARGV[A + 2] ~= '' then
  local version = cjson.decode(current)['version'] or 0
  if tostring(version) ~= ARGV[A + 2] then return 0 end
end
"""
_UPDATE_DISPUTE_WRITE = """
redis.call('HSET', KEYS[K + 1], ARGV[A + 1], ARGV[A + 3])
if ARGV[A + 4] == 'open' then
  redis.call('ZADD', KEYS[K + 2], 0, ARGV[A + 1])
else
  redis.call('ZREM', KEYS[K + 2], ARGV[A + 1])
end
"""
UPDATE_DISPUTE = _ALONE + _UPDATE_DISPUTE_CHECKS + _UPDATE_DISPUTE_WRITE + "return 1\n"
# With its entry (store.update_dispute's ``audit``): written only over a stored dispute (-1
# when missing, version or not); -3 another writer moved the head (nothing written).
UPDATE_DISPUTE_AUDITED = (
    _AFTER_AUDIT
    + _UPDATE_DISPUTE_CHECKS
    + "if not current then return -1 end\n"
    + _audit_head_moved("-3")
    + _UPDATE_DISPUTE_WRITE
    + _AUDIT_WRITE
    + "return 1\n"
)

# Every dispute's id, in id order, built once from the hash for disputes stored before it.
# KEYS: disputes hash, the ids' sorted set, the mark that it is built.  Returns how many added.
INDEX_DISPUTE_IDS = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local added = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  added = added + redis.call('ZADD', KEYS[2], 0, id)
end
redis.call('SET', KEYS[3], '1')
return added
"""

# The disputes by card ("card id|dispute id"), built once from the hash for disputes stored
# before it.  KEYS: disputes hash, the index, the mark that it is built.  Returns how many added.
INDEX_DISPUTES_BY_CARD = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local added = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local card = cjson.decode(all[i + 1])['card_id']
  if type(card) == 'string' then
    added = added + redis.call('ZADD', KEYS[2], 0, card .. '|' .. all[i])
  end
end
redis.call('SET', KEYS[3], '1')
return added
"""

# The open disputes' index, built once from the hash for disputes stored before it existed.
# KEYS: disputes hash, open disputes' ids, the mark that it is built.  Returns how many added.
INDEX_OPEN_DISPUTES = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local added = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1])['state'] == 'open' then
    added = added + redis.call('ZADD', KEYS[2], 0, all[i])
  end
end
redis.call('SET', KEYS[3], '1')
return added
"""

# KEYS: account hash, holds hash, hold lives.  ARGV: created before, the most a hold's life
# may be shorter than that (a pump's goes at most this much sooner: as SQLite, which looks no
# further past the cutoff than this)
EXPIRE_HOLDS = """
local released = 0
local all = redis.call('HGETALL', KEYS[2])
local shortest = -tonumber(ARGV[2] or '0')
for i = 1, #all, 2 do
  local a, p, r, c = string.match(all[i + 1], '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local left = tonumber(a) - tonumber(r)
  local extra = 0
  if p == '0' and left > 0 then
    extra = math.max(tonumber(redis.call('HGET', KEYS[3], all[i]) or '0'), shortest)
  end
  if p == '0' and left > 0 and tonumber(c) + extra < tonumber(ARGV[1]) then
    local held = tonumber(redis.call('HGET', KEYS[1], 'holds') or '0')
    redis.call('HINCRBY', KEYS[1], 'holds', string.format('%d', -math.min(left, held)))
    redis.call('HINCRBY', KEYS[1], 'version', 1)
    redis.call('HSET', KEYS[2], all[i], a .. '|' .. p .. '|' .. a .. '|' .. c)
    released = released + 1
  end
end
return released
"""

# A load or take-off of funds (store.change_funds), at most once per key when ARGV[A+3] is
# '1'. KEYS[K+1..]: account hash, the key's record, the account's funds_written index.
# ARGV[A+1..]: delta, request fingerprint, has key, now, the key (the record is indexed by its
# time: prunable), the balance and credit limit its entry was made from ('' '': no entry).
# Reply: {'ok', record} changed, {'repeated', record} the key's earlier change, {'noaccount'},
# {'short'} the change would lower the open-to-buy below zero, {'beyond'} it would take the
# balance beyond BOUND, {'moved'} or {'head'} (_account_moved): nothing changed but for 'ok'.
_FUNDS_CHECKS = (
    _BOUND_LUA
    + """
if ARGV[A + 3] == '1' then
  local stored = redis.call('GET', KEYS[K + 2])
  if stored then return {'repeated', stored} end
end
local a = redis.call('HMGET', KEYS[K + 1], 'kind', 'balance', 'credit_limit', 'holds')
if not a[1] then return {'noaccount'} end
local delta = tonumber(ARGV[A + 1])
if beyond_bound(tonumber(a[2]), delta) then return {'beyond'} end
local balance = tonumber(a[2]) + delta
local lowers, open_to_buy
if a[1] == 'credit' then
  lowers, open_to_buy = delta > 0, tonumber(a[3]) - balance - tonumber(a[4])
else
  lowers, open_to_buy = delta < 0, balance + tonumber(a[3]) - tonumber(a[4])
end
if lowers and open_to_buy < 0 then return {'short'} end
"""
)
_FUNDS_WRITE = (
    """
redis.call('HINCRBY', KEYS[K + 1], 'balance', ARGV[A + 1])
redis.call('HINCRBY', KEYS[K + 1], 'version', 1)
local names = {"""
    + _ACCOUNT_FIELDS_LUA
    + """}
local values = redis.call('HMGET', KEYS[K + 1], unpack(names))
local account = {}
for i, name in ipairs(names) do account[name] = values[i] end
local record = cjson.encode({request = ARGV[A + 2], account = account})
if ARGV[A + 3] == '1' then
  redis.call('SET', KEYS[K + 2], record)
  redis.call('ZADD', KEYS[K + 3], ARGV[A + 4], ARGV[A + 5])
end
"""
)
CHANGE_FUNDS, CHANGE_FUNDS_AUDITED = _account_scripts(
    _FUNDS_CHECKS, 6, _FUNDS_WRITE, "return {'ok', record}\n"
)

# An account's credit limit (a debit account's arranged overdraft): store.set_credit_limit.
# KEYS[K+1]: account hash.  ARGV[A+1..]: the limit, the balance and credit limit its entry
# was made from ('' '': no entry). Reply: {'noaccount'}, {'moved'} or {'head'} (nothing changed), or
# {'ok', the account's fields}.
_CREDIT_LIMIT_CHECKS = """
if redis.call('EXISTS', KEYS[K + 1]) == 0 then return {'noaccount'} end
"""
_CREDIT_LIMIT_WRITE = """
redis.call('HSET', KEYS[K + 1], 'credit_limit', ARGV[A + 1])
redis.call('HINCRBY', KEYS[K + 1], 'version', 1)
"""
SET_CREDIT_LIMIT, SET_CREDIT_LIMIT_AUDITED = _account_scripts(
    _CREDIT_LIMIT_CHECKS,
    2,
    _CREDIT_LIMIT_WRITE,
    "return {'ok', unpack(redis.call('HMGET', KEYS[K + 1], " + _ACCOUNT_FIELDS_LUA + "))}\n",
)

# A ledger balance sync (store.sync_ledger). KEYS[K+1..]: account hash, journal hash, the
# account's journal ids (journal_all). ARGV[A+1..]: the bank's ledger balance, the journal id
# it is through, the most entries after it the script adds up
# (store.interface.LEDGER_MAX_AFTER), now, the balance and credit limit its entry was made
# from ('' '': no entry). The account hash keeps ledger_through (the cursor of the last sync,
# with ledger_balance and ledger_synced_at) and journal_pruned_through (the newest of its
# entries retention deleted).
# Reply: {'noaccount'}; {'refused', applied, pruned, unknown, count} ('' none: the caller words
# it, store.interface.ledger_refusal); {'beyond', the balance it would set} (beyond BOUND);
# {'moved'} or {'head'} (_account_moved); {'ok', what the entries after added, how many moved the
# balance, the account's fields}.
_LEDGER_CHECKS = (
    _BOUND_LUA
    + """
if redis.call('EXISTS', KEYS[K + 1]) == 0 then return {'noaccount'} end
local through = tonumber(ARGV[A + 2])
local state = redis.call('HMGET', KEYS[K + 1], 'ledger_through', 'journal_pruned_through')
local count = redis.call('ZCOUNT', KEYS[K + 3], '(' .. ARGV[A + 2], '+inf')
if count > tonumber(ARGV[A + 3]) then
  return {'refused', state[1] or '', state[2] or '', '', count}
end
local after, moved, unknown = 0, 0, ''
for _, jid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[K + 3], '(' .. ARGV[A + 2], '+inf')) do
  local text = redis.call('HGET', KEYS[K + 2], jid)
  if text then
    -- the key with bare quotes is only ever the field itself (values' quotes are escaped)
    local delta = string.match(text, '"balance_delta":(-?%d+)')
    if not delta then
      if unknown == '' then unknown = jid end
    elseif tonumber(delta) ~= 0 then
      after, moved = after + tonumber(delta), moved + 1
    end
  end
end
if (state[1] and through < tonumber(state[1])) or (state[2] and through < tonumber(state[2]))
   or unknown ~= '' then
  return {'refused', state[1] or '', state[2] or '', unknown, count}
end
if math.abs(tonumber(ARGV[A + 1]) + after) > BOUND then
  return {'beyond', string.format('%d', tonumber(ARGV[A + 1]) + after)}
end
"""
)
_LEDGER_WRITE = """
redis.call('HSET', KEYS[K + 1], 'balance', string.format('%d', tonumber(ARGV[A + 1]) + after),
  'ledger_through', ARGV[A + 2], 'ledger_balance', ARGV[A + 1], 'ledger_synced_at', ARGV[A + 4])
redis.call('HINCRBY', KEYS[K + 1], 'version', 1)
"""
SYNC_LEDGER, SYNC_LEDGER_AUDITED = _account_scripts(
    _LEDGER_CHECKS,
    5,
    _LEDGER_WRITE,
    "return {'ok', string.format('%d', after), moved, unpack(redis.call('HMGET', KEYS[K + 1], "
    + _ACCOUNT_FIELDS_LUA
    + "))}\n",
)

# An intent dropped only if it is still the one written at ARGV[2] (its ts): a finisher that
# read it must not drop the same work begun again since. KEYS: the kind's hash. ARGV: subject, ts.
DROP_INTENT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw)['ts'] ~= tonumber(ARGV[2]) then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""

# A retention batch and its audit entry in one script (store.prune_journal,
# prune_idempotency; SINGLE REDIS ONLY: the batch spans accounts' slots and the audit log's).
# KEYS[1..5] APPEND_AUDIT_CHAINED's, then the keys the batch's steps name.  ARGV[1..3] the
# entry's; ARGV[4] how many steps; then each step: its command, the index of its key in KEYS,
# how many arguments, the arguments. The checks come first: HAS (each hash field is still
# there: no other run deleted it), SAME (field, value pairs: each field still holds the value
# read, a hold not made again under its match key since another run deleted it), THERE (the
# key is there: a result counted is one deleted) and OLDER (each member of an age index is
# still scored before the cut ARGV: not written again since); then the writes (HDEL, ZREM,
# HSET, DEL),
# then the entry. -3 another writer moved the head; -5 something the batch deletes is gone
# (another run deleted it), -4 it changed (a hold's value, a result written again): nothing
# written (the entry's counts were made from what was read, so the caller reads again). Else 1.
AUDITED_BATCH = (
    _audit_head_moved("-3")
    + """
local steps, at = {}, 5
for i = 1, tonumber(ARGV[4]) do
  local n = tonumber(ARGV[at + 2])
  steps[i] = {ARGV[at], KEYS[tonumber(ARGV[at + 1])], at + 3, at + 2 + n}
  at = at + 3 + n
end
for _, s in ipairs(steps) do
  if s[1] == 'HAS' then
    for j = s[3], s[4] do
      if redis.call('HEXISTS', s[2], ARGV[j]) == 0 then return -5 end
    end
  elseif s[1] == 'SAME' then
    for j = s[3], s[4], 2 do
      local held = redis.call('HGET', s[2], ARGV[j])
      if not held then return -5 end
      if held ~= ARGV[j + 1] then return -4 end
    end
  elseif s[1] == 'THERE' then
    if redis.call('EXISTS', s[2]) == 0 then return -5 end
  elseif s[1] == 'OLDER' then
    local cut = tonumber(ARGV[s[3]])
    for j = s[3] + 1, s[4] do
      local written = redis.call('ZSCORE', s[2], ARGV[j])
      if not written then return -5 end
      if tonumber(written) >= cut then return -4 end
    end
  end
end
for _, s in ipairs(steps) do
  if s[1] ~= 'HAS' and s[1] ~= 'SAME' and s[1] ~= 'THERE' and s[1] ~= 'OLDER' then
    redis.call(s[1], s[2], unpack(ARGV, s[3], s[4]))
  end
end
"""
    + _AUDIT_WRITE
    + "return 1\n"
)
