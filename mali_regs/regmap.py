"""A small declarative register-map framework (m1n1 ``RegMap`` style, data first).

Vocabulary
----------
``Field``
    A named bit range ``[msb:lsb]`` of a register, optionally with an enum
    (value -> name).  A one-bit field without enum is a *flag*: it decodes to
    its bare name when set (``FAULT|RESET_COMPLETED``).
``Register``
    A named register at an *absolute* MMIO offset, 32 or 64 bits wide.  The
    hardware exposes a 64-bit register as two 32-bit words, ``NAME_LO`` at
    ``offset`` and ``NAME_HI`` at ``offset + 4``; :meth:`Register.describe`
    decodes a full 64-bit access or either half.  A register may carry
    *variants*: extra fields selected by the value of a discriminator field
    (``GPU_COMMAND``'s payload depends on its ``COMMAND`` byte).
``RegisterArray``
    ``count`` copies of one register at ``offset + i * stride``
    (``TEXTURE_FEATURES[n]``, ``AS_TRANSTAB[n]``, ``DOORBELL[n]``).
``GroupArray``
    A view tying several arrays of the same count/stride together:
    ``MMU_AS.AS[3].TRANSTAB is MMU_AS.AS_TRANSTAB[3]``.
``RegisterBlock``
    A named block (``GPU_CONTROL``, ``MMU_AS`` ...) with a base, its registers
    and arrays.  Registers are reachable as attributes:
    ``GPU_CONTROL.GPU_ID.offset``.
``RegMap``
    Several blocks merged into one offset index: :meth:`RegMap.lookup` is a
    single dict lookup, meant for the MMIO hot path.

Everything here is immutable after construction and imports nothing but the
standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping

__all__ = [
    "Access",
    "Part",
    "Field",
    "F",
    "flags",
    "Register",
    "R32",
    "R64",
    "RegisterArray",
    "GroupArray",
    "RegisterBlock",
    "RegMap",
]


class Access(enum.Enum):
    """How software may access a register (what the *hardware* does with it)."""

    RO = "RO"    # read-only; writes are ignored
    WO = "WO"    # write-only; reads return 0
    RW = "RW"    # read/write storage
    W1C = "W1C"  # write-only, each 1 bit written clears that bit of a status register
    W1S = "W1S"  # readable; each 1 bit written *sets* that bit (IRQ RAWSTAT)

    @property
    def readable(self) -> bool:
        return self is not Access.WO and self is not Access.W1C

    @property
    def writable(self) -> bool:
        return self is not Access.RO


class Part(enum.IntEnum):
    """Which part of a register an access touches."""

    FULL = 0  # the whole register (a 32-bit register, or a 64-bit access)
    LO = 1    # bits [31:0] of a 64-bit register, at its offset
    HI = 2    # bits [63:32] of a 64-bit register, at offset + 4


def _fmt_int(v: int, bits: int) -> str:
    return str(v) if bits <= 3 else f"0x{v:x}"


@dataclass(frozen=True, slots=True)
class Field:
    """Bits ``[msb:lsb]`` (inclusive) of a register."""

    name: str
    msb: int
    lsb: int
    enum: Mapping[int, str] | None = None
    access: Access | None = None  # None: same as the register
    doc: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.lsb <= self.msb < 64):
            raise ValueError(f"field {self.name}: bad range [{self.msb}:{self.lsb}]")
        if self.enum is not None and not isinstance(self.enum, MappingProxyType):
            object.__setattr__(self, "enum", MappingProxyType(dict(self.enum)))

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        """The field's bits in register position (``FIELD.mask`` is a ready bit constant)."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def is_flag(self) -> bool:
        return self.width == 1 and self.enum is None

    def extract(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def insert(self, value: int, fv: int | str) -> int:
        """Return ``value`` with this field set to ``fv`` (int or enum name)."""
        v = self.value_of(fv)
        return (value & ~self.mask) | (v << self.lsb)

    def value_of(self, fv: int | str | bool) -> int:
        """Convert an int, bool or enum name into the field's raw value (range-checked)."""
        if isinstance(fv, str):
            if self.enum is None:
                raise ValueError(f"field {self.name} has no enum; got {fv!r}")
            want = fv.upper()
            for k, n in self.enum.items():
                if n.upper() == want:
                    fv = k
                    break
            else:
                raise ValueError(f"field {self.name}: unknown value name {fv!r} "
                                 f"(known: {', '.join(self.enum.values())})")
        v = int(fv)
        if v < 0 or v >> self.width:
            raise ValueError(f"field {self.name} [{self.msb}:{self.lsb}]: value {v:#x} does not fit")
        return v

    def name_of(self, raw: int) -> str | None:
        """Enum name for a raw field value, if any."""
        if self.enum is None:
            return None
        return self.enum.get(raw)

    def format(self, raw: int) -> str:
        if self.enum is not None:
            n = self.enum.get(raw)
            return f"{self.name}={n}" if n is not None else f"{self.name}={_fmt_int(raw, self.width)}(?)"
        return f"{self.name}={_fmt_int(raw, self.width)}"


def F(name: str, msb: int, lsb: int | None = None, enum: Mapping[int, str] | None = None,
      doc: str = "", access: Access | None = None) -> Field:
    """Shorthand: ``F("NAME", 3, 0)`` is bits [3:0]; ``F("NAME", 8)`` is bit 8."""
    return Field(name, msb, msb if lsb is None else lsb, enum, access, doc)


def flags(bits: Mapping[int, str]) -> tuple[Field, ...]:
    """One-bit flag fields from ``{bit: name}``."""
    return tuple(Field(n, b, b) for b, n in sorted(bits.items()))


class Register:
    """One (logical) register.  Immutable; build with :func:`R32` / :func:`R64`."""

    __slots__ = ("name", "offset", "width", "access", "reset", "field_defs", "doc", "aliases",
                 "index", "block", "variant_field", "variants", "since_arch", "_by_name",
                 "_full_name", "_lo_name", "_hi_name")

    def __init__(self, name: str, offset: int, width: int = 32, access: Access = Access.RW,
                 reset: int = 0, fields: Iterable[Field] = (), doc: str = "",
                 aliases: Iterable[str] = (), variant_field: str | None = None,
                 variants: Mapping[int, Iterable[Field]] | None = None,
                 since_arch: int | None = None, index: int | None = None,
                 block: str = "") -> None:
        if width not in (32, 64):
            raise ValueError(f"{name}: width must be 32 or 64")
        if offset % 4:
            raise ValueError(f"{name}: offset {offset:#x} is not 4-byte aligned")
        if width == 64 and offset % 8:
            raise ValueError(f"{name}: 64-bit register offset {offset:#x} is not 8-byte aligned")
        s = object.__setattr__
        s(self, "name", name)
        s(self, "offset", offset)
        s(self, "width", width)
        s(self, "access", access)
        s(self, "reset", reset)
        s(self, "field_defs", tuple(fields))
        s(self, "doc", doc)
        s(self, "aliases", tuple(aliases))
        s(self, "index", index)
        s(self, "block", block)
        s(self, "since_arch", since_arch)
        s(self, "variant_field", variant_field)
        s(self, "variants", MappingProxyType({k: tuple(v) for k, v in (variants or {}).items()}))
        by_name: dict[str, Field] = {}
        for f in self.field_defs:
            self._check_field(f, by_name)
        base_fields = dict(by_name)
        for vfields in self.variants.values():
            seen = dict(base_fields)
            for f in vfields:
                self._check_field(f, seen)
                by_name.setdefault(f.name, f)
        if variant_field is not None and variant_field not in by_name:
            raise ValueError(f"{name}: variant field {variant_field} is not a field")
        s(self, "_by_name", MappingProxyType(by_name))
        suffix = "" if index is None else f"[{index}]"
        s(self, "_full_name", name + suffix)
        s(self, "_lo_name", f"{name}_LO{suffix}")
        s(self, "_hi_name", f"{name}_HI{suffix}")
        if reset >> width:
            raise ValueError(f"{name}: reset value {reset:#x} wider than {width} bits")

    def _check_field(self, f: Field, by_name: dict[str, Field]) -> None:
        if f.msb >= self.width:
            raise ValueError(f"{self.name}.{f.name}: bit {f.msb} outside a {self.width}-bit register")
        if f.name in by_name:
            raise ValueError(f"{self.name}: duplicate field {f.name}")
        for o in by_name.values():
            if o.mask & f.mask:
                raise ValueError(f"{self.name}: fields {o.name} and {f.name} overlap")
        by_name[f.name] = f

    def __setattr__(self, key, value):  # immutability
        raise AttributeError(f"Register {self.name} is immutable")

    # --- naming ---------------------------------------------------------------------------
    @property
    def full_name(self) -> str:
        """``NAME`` or ``NAME[i]`` for an array element."""
        return self._full_name

    def part_name(self, part: Part) -> str:
        """``NAME``, ``NAME_LO`` or ``NAME_HI`` (with ``[i]`` for array elements)."""
        if part is Part.LO:
            return self._lo_name
        if part is Part.HI:
            return self._hi_name
        return self._full_name

    @property
    def size(self) -> int:
        """Size in bytes (4 or 8)."""
        return self.width // 8

    @property
    def end(self) -> int:
        """First offset after the register."""
        return self.offset + self.width // 8

    @property
    def readable(self) -> bool:
        return self.access.readable

    @property
    def writable(self) -> bool:
        return self.access.writable

    @property
    def mask(self) -> int:
        """All bits of the register."""
        return (1 << self.width) - 1

    # --- fields ---------------------------------------------------------------------------
    def field(self, name: str) -> Field:
        """A field by name (base or variant field)."""
        try:
            return self._by_name[name]
        except KeyError:
            try:
                return self._by_name[name.upper()]
            except KeyError:
                raise KeyError(f"{self.name} has no field {name!r}") from None

    def __getattr__(self, name: str) -> Field:
        # Only reached for names that are not slots: upper-case names are fields.
        if name[:1].isupper():
            try:
                return self._by_name[name]
            except KeyError:
                pass
        raise AttributeError(f"{type(self).__name__} {self._full_name} has no attribute {name!r}")

    def fields_for(self, value: int) -> tuple[Field, ...]:
        """The fields that apply to ``value`` (base fields + the selected variant)."""
        if self.variant_field is None:
            return self.field_defs
        sel = self._by_name[self.variant_field].extract(value)
        return self.field_defs + self.variants.get(sel, ())

    @property
    def all_fields(self) -> tuple[Field, ...]:
        """Base fields and every variant's fields."""
        return tuple(self._by_name.values())

    def fields(self, value: int) -> dict[str, int]:
        """``{field: raw value}`` for every field that applies to ``value``."""
        return {f.name: f.extract(value) for f in self.fields_for(value)}

    unpack = fields

    def unpack_named(self, value: int) -> dict[str, int | str]:
        """Like :meth:`unpack`, enum fields given by name when known."""
        out: dict[str, int | str] = {}
        for f in self.fields_for(value):
            raw = f.extract(value)
            n = f.name_of(raw)
            out[f.name] = n if n is not None else raw
        return out

    def encode(self, _base: int = 0, **fields: int | str | bool) -> int:
        """Build a value: ``GPU_COMMAND.encode(COMMAND="FLUSH_CACHES", L2="CLEAN_INVALIDATE")``.

        Field names are case-insensitive; values are ints, bools or enum names.  Fields not
        given keep their bits from ``_base`` (default 0).  When the register has variants,
        the discriminator (given here or already in ``_base``) selects which extra fields
        are legal.
        """
        value = _base
        items = {k.upper(): v for k, v in fields.items()}
        if self.variant_field is not None and self.variant_field in items:
            value = self._by_name[self.variant_field].insert(value, items.pop(self.variant_field))
        legal = {f.name: f for f in self.fields_for(value)}
        for k, v in items.items():
            f = legal.get(k)
            if f is None:
                if k in self._by_name:
                    raise KeyError(f"{self.name}: field {k} does not apply to this "
                                   f"{self.variant_field} value")
                raise KeyError(f"{self.name} has no field {k!r}")
            value = f.insert(value, v)
        if value >> self.width:
            raise ValueError(f"{self.name}: value {value:#x} wider than {self.width} bits")
        return value

    def set(self, value: int, **fields: int | str | bool) -> int:
        """``value`` with some fields replaced."""
        return self.encode(value, **fields)

    # --- decode ---------------------------------------------------------------------------
    def format_value(self, value: int, part: Part = Part.FULL) -> str:
        """The part in parentheses of a decode line (without the parentheses), or ``""``."""
        if part is Part.FULL:
            shift, lo_bit, hi_bit = 0, 0, self.width - 1
        else:
            shift = 0 if part is Part.LO else 32
            lo_bit, hi_bit = shift, shift + 31
            value = (value & 0xFFFFFFFF) << shift
        items: list[str] = []
        flag_names: list[str] = []
        covered = 0
        for f in self.fields_for(value):
            if f.lsb > hi_bit or f.msb < lo_bit:
                continue
            if f.lsb >= lo_bit and f.msb <= hi_bit:
                covered |= f.mask
                raw = f.extract(value)
                if f.is_flag:
                    if raw:
                        flag_names.append(f.name)
                else:
                    items.append(f.format(raw))
            else:  # a field straddling the two halves of a 64-bit register
                m, l_ = min(f.msb, hi_bit), max(f.lsb, lo_bit)
                w = m - l_ + 1
                covered |= ((1 << w) - 1) << l_
                items.append(f"{f.name}[{m}:{l_}]={_fmt_int((value >> l_) & ((1 << w) - 1), w)}")
        if flag_names:
            items.append("|".join(flag_names))
        unknown = (value & ~covered) >> shift
        if unknown and (self.field_defs or self.variants):
            items.append(f"UNK=0x{unknown:x}")
        return ", ".join(items)

    def describe(self, value: int, part: Part = Part.FULL) -> str:
        """``NAME = 0x... (FIELDS)`` for an access of ``part`` carrying ``value``."""
        digits = 16 if (part is Part.FULL and self.width == 64) else 8
        body = self.format_value(value, part)
        head = f"{self.part_name(part)} = 0x{value:0{digits}x}"
        return f"{head} ({body})" if body else head

    def __repr__(self) -> str:
        return (f"<Register {self.block + '.' if self.block else ''}{self._full_name} "
                f"@0x{self.offset:05x} {self.width}b {self.access.value}>")

    def _with(self, **kw) -> "Register":
        args = dict(name=self.name, offset=self.offset, width=self.width, access=self.access,
                    reset=self.reset, fields=self.field_defs, doc=self.doc, aliases=self.aliases,
                    variant_field=self.variant_field, variants=self.variants,
                    since_arch=self.since_arch, index=self.index, block=self.block)
        args.update(kw)
        return Register(**args)


def R32(name: str, offset: int, access: Access = Access.RW, reset: int = 0,
        fields: Iterable[Field] = (), doc: str = "", **kw) -> Register:
    return Register(name, offset, 32, access, reset, fields, doc, **kw)


def R64(name: str, offset: int, access: Access = Access.RW, reset: int = 0,
        fields: Iterable[Field] = (), doc: str = "", **kw) -> Register:
    return Register(name, offset, 64, access, reset, fields, doc, **kw)


class RegisterArray:
    """``count`` copies of a template register at ``template.offset + i * stride``."""

    __slots__ = ("template", "count", "stride", "_items")

    def __init__(self, template: Register, count: int, stride: int) -> None:
        if count < 1:
            raise ValueError("empty array")
        if stride < template.size:
            raise ValueError(f"{template.name}: stride {stride:#x} smaller than the register")
        self.template = template
        self.count = count
        self.stride = stride
        self._items = tuple(template._with(offset=template.offset + i * stride, index=i)
                            for i in range(count))

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def offset(self) -> int:
        """Offset of element 0."""
        return self.template.offset

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.template.aliases

    def __getitem__(self, i: int) -> Register:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError("array index must be an int")
        if not 0 <= i < self.count:
            raise IndexError(f"{self.name}[{i}] out of range (0..{self.count - 1})")
        return self._items[i]

    def __iter__(self) -> Iterator[Register]:
        return iter(self._items)

    def __len__(self) -> int:
        return self.count

    def offset_of(self, i: int) -> int:
        return self[i].offset

    def index_of(self, offset: int) -> int | None:
        """Element index whose register covers ``offset``, or None."""
        rel = offset - self.template.offset
        if rel < 0:
            return None
        i, r = divmod(rel, self.stride)
        return i if i < self.count and r < self.template.size else None

    def __repr__(self) -> str:
        return (f"<RegisterArray {self.name}[{self.count}] @0x{self.offset:05x} "
                f"stride 0x{self.stride:x}>")


class _GroupInstance:
    __slots__ = ("_regs", "index")

    def __init__(self, regs: Mapping[str, Register], index: int) -> None:
        object.__setattr__(self, "_regs", regs)
        object.__setattr__(self, "index", index)

    def __getattr__(self, name: str) -> Register:
        try:
            return self._regs[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[Register]:
        return iter(self._regs.values())

    def __repr__(self) -> str:
        return f"<group instance {self.index}: {', '.join(self._regs)}>"


class GroupArray:
    """Several arrays of equal count/stride viewed as an array of register groups.

    ``GroupArray("AS", arrays, prefix="AS_")[3].TRANSTAB`` is ``AS_TRANSTAB[3]``.
    """

    __slots__ = ("name", "arrays", "prefix", "count", "stride", "base", "_insts")

    def __init__(self, name: str, arrays: Iterable[RegisterArray], prefix: str = "",
                 base: int | None = None) -> None:
        self.name = name
        self.arrays = tuple(arrays)
        self.prefix = prefix
        self.count = self.arrays[0].count
        self.stride = self.arrays[0].stride
        if any(a.count != self.count or a.stride != self.stride for a in self.arrays):
            raise ValueError(f"group {name}: arrays differ in count or stride")
        self.base = min(a.offset for a in self.arrays) if base is None else base
        insts = []
        for i in range(self.count):
            regs = {a.name[len(prefix):] if a.name.startswith(prefix) else a.name: a[i]
                    for a in self.arrays}
            insts.append(_GroupInstance(MappingProxyType(regs), i))
        self._insts = tuple(insts)

    def __getitem__(self, i: int) -> _GroupInstance:
        if not 0 <= i < self.count:
            raise IndexError(f"{self.name}{i} out of range (0..{self.count - 1})")
        return self._insts[i]

    def __iter__(self):
        return iter(self._insts)

    def __len__(self) -> int:
        return self.count

    def base_of(self, i: int) -> int:
        return self.base + i * self.stride


def _build_index(registers: Iterable[Register]) -> dict[int, tuple[Register, Part]]:
    idx: dict[int, tuple[Register, Part]] = {}
    for r in registers:
        entries = ((r.offset, Part.FULL),) if r.width == 32 else \
            ((r.offset, Part.LO), (r.offset + 4, Part.HI))
        for off, part in entries:
            if off in idx:
                o = idx[off][0]
                raise ValueError(f"overlap at 0x{off:x}: {o.block}.{o.full_name} and "
                                 f"{r.block}.{r.full_name}")
            idx[off] = (r, part)
    return idx


class _RegisterSet:
    """What blocks and maps share: registers by display name, iteration and size.

    Subclasses provide ``name``, ``registers`` and ``_by_full`` (display name -> Register)."""

    def __getitem__(self, name: str) -> Register:
        """A register by display name: ``"GPU_ID"``, ``"AS_TRANSTAB[3]"``, ``"SHADER_PRESENT_LO"``."""
        try:
            return self._by_full[name]
        except KeyError:
            raise KeyError(f"{self.name} has no register {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_full

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers)

    def __len__(self) -> int:
        return len(self.registers)


class RegisterBlock(_RegisterSet):
    """A named group of registers at a base offset.

    Members are given with absolute offsets.  Attribute access returns registers,
    arrays and group arrays by name or alias: ``GPU_CONTROL.GPU_ID``,
    ``GPU_CONTROL.TEXTURE_FEATURES[2]``, ``MMU_AS.AS[3].COMMAND``.
    """

    def __init__(self, name: str, base: int, members: Iterable[Register | RegisterArray | GroupArray],
                 size: int | None = None, doc: str = "", since_arch: int | None = None) -> None:
        self.name = name
        self.base = base
        self.doc = doc
        self.since_arch = since_arch
        regs: list[Register] = []
        arrays: list[RegisterArray] = []
        groups: list[GroupArray] = []
        members_out: list[Register | RegisterArray | GroupArray] = []
        names: dict[str, object] = {}

        def add_name(n: str, obj: object) -> None:
            if n in names and names[n] is not obj:
                raise ValueError(f"block {name}: duplicate name {n}")
            names[n] = obj

        def check(r: Register) -> None:
            if r.offset < base or (size is not None and r.end > base + size):
                raise ValueError(f"{name}.{r.full_name} @0x{r.offset:x} outside the block")

        def stamp(r: Register) -> Register:
            """The register as a member of this block (the same object when it already is,
            so rebuilding a block keeps register identities)."""
            check(r)
            arch = r.since_arch if r.since_arch is not None else since_arch
            if r.block == name and r.since_arch == arch:
                return r
            return r._with(block=name, since_arch=arch)

        def stamp_array(a: RegisterArray) -> RegisterArray:
            t = stamp(a.template)
            na = a if t is a.template else RegisterArray(t, a.count, a.stride)
            for r in na:
                check(r)
            return na

        for m in members:
            if isinstance(m, GroupArray):
                new_arrays = []
                for a in m.arrays:
                    na = stamp_array(a)
                    new_arrays.append(na)
                    arrays.append(na)
                    regs.extend(na)
                    add_name(na.name, na)
                    for al in na.aliases:
                        add_name(al, na)
                if all(x is y for x, y in zip(new_arrays, m.arrays)):
                    g = m
                else:
                    g = GroupArray(m.name, new_arrays, m.prefix, m.base)
                groups.append(g)
                add_name(g.name, g)
                members_out.append(g)
            elif isinstance(m, RegisterArray):
                na = stamp_array(m)
                arrays.append(na)
                regs.extend(na)
                add_name(na.name, na)
                for al in na.aliases:
                    add_name(al, na)
                members_out.append(na)
            else:
                r = stamp(m)
                regs.append(r)
                add_name(r.name, r)
                for al in r.aliases:
                    add_name(al, r)
                members_out.append(r)
        #: the declaration: registers, arrays and group arrays, in declaration order
        self.members: tuple[Register | RegisterArray | GroupArray, ...] = tuple(members_out)
        regs.sort(key=lambda r: r.offset)
        self.registers: tuple[Register, ...] = tuple(regs)
        self.arrays: tuple[RegisterArray, ...] = tuple(arrays)
        self.groups: tuple[GroupArray, ...] = tuple(groups)
        self._names = names
        self._index = _build_index(self.registers)  # raises on overlap
        self.size = size if size is not None else (max(r.end for r in regs) - base if regs else 0)
        by_full: dict[str, Register] = {}
        for r in regs:
            by_full[r.full_name] = r
            if r.width == 64:
                by_full[r.part_name(Part.LO)] = r
                by_full[r.part_name(Part.HI)] = r
            for al in r.aliases:
                by_full[al + ("" if r.index is None else f"[{r.index}]")] = r
        self._by_full = by_full

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_names"][name]
        except KeyError:
            raise AttributeError(f"block {self.__dict__.get('name')} has no register {name!r}") from None

    @property
    def end(self) -> int:
        return self.base + self.size

    def lookup(self, offset: int) -> tuple[Register, Part] | None:
        """``(register, part)`` at absolute ``offset``, or None."""
        return self._index.get(offset)

    def decode(self, offset: int, value: int, width: int = 32) -> str:
        return _decode(self._index, offset, value, width)

    def __repr__(self) -> str:
        return f"<RegisterBlock {self.name} @0x{self.base:05x}+0x{self.size:x} ({len(self.registers)} regs)>"


def _norm_width(width: int) -> int:
    if width in (32, 64):
        return width
    if width in (4, 8):
        return width * 8
    raise ValueError(f"unsupported access width {width}")


def _decode(index: Mapping[int, tuple[Register, Part]], offset: int, value: int, width: int) -> str:
    width = _norm_width(width)
    hit = index.get(offset)
    if hit is None:
        if width == 64:
            lo = _decode(index, offset, value & 0xFFFFFFFF, 32)
            hi = _decode(index, offset + 4, value >> 32, 32)
            return f"{lo}; {hi}"
        return f"UNKNOWN@0x{offset:05x} = 0x{value:08x}"
    reg, part = hit
    if width == 64:
        if reg.width == 64 and part is Part.LO:
            return reg.describe(value, Part.FULL)
        # a 64-bit access spanning two 32-bit registers (or starting at a _HI word)
        return (f"{_decode(index, offset, value & 0xFFFFFFFF, 32)}; "
                f"{_decode(index, offset + 4, value >> 32, 32)}")
    return reg.describe(value & 0xFFFFFFFF, part)


class RegMap(_RegisterSet):
    """Several blocks merged into one offset index.

    ``lookup(offset)`` is one dict lookup; ``decode(offset, value, width)`` formats a log
    line.  ``RegMap[name]`` finds a register by display name in any block, and blocks are
    attributes (``MALI_MMIO.GPU_CONTROL``).
    """

    def __init__(self, name: str, blocks: Iterable[RegisterBlock], size: int | None = None) -> None:
        self.name = name
        self.blocks: tuple[RegisterBlock, ...] = tuple(sorted(blocks, key=lambda b: b.base))
        regs = [r for b in self.blocks for r in b.registers]
        self._index = _build_index(regs)  # raises on any overlap between blocks
        self.registers: tuple[Register, ...] = tuple(sorted(regs, key=lambda r: r.offset))
        self.size = size if size is not None else max(b.end for b in self.blocks)
        self._blocks_by_name = {b.name: b for b in self.blocks}
        by_full: dict[str, Register] = {}
        for b in self.blocks:
            for k, r in b._by_full.items():
                if k in by_full and by_full[k] is not r:
                    raise ValueError(f"register name {k} in two blocks")
                by_full[k] = r
        self._by_full = by_full

    def __getattr__(self, name: str) -> RegisterBlock:
        try:
            return self.__dict__["_blocks_by_name"][name]
        except KeyError:
            raise AttributeError(name) from None

    def block(self, name: str) -> RegisterBlock:
        return self._blocks_by_name[name]

    def block_at(self, offset: int) -> RegisterBlock | None:
        """The innermost block whose range covers ``offset`` (MCU_CONTROL sits inside
        the GPU_CONTROL page), or None."""
        for b in reversed(self.blocks):
            if b.base <= offset < b.end:
                return b
        return None

    @property
    def index(self) -> Mapping[int, tuple[Register, Part]]:
        """The raw ``offset -> (register, part)`` dict (read-only view)."""
        return MappingProxyType(self._index)

    def lookup(self, offset: int) -> tuple[Register, Part] | None:
        """``(register, part)`` for a 32-bit word at absolute ``offset``, or None.

        A 64-bit register answers ``Part.LO`` at its offset and ``Part.HI`` at +4;
        a 64-bit access at the ``LO`` offset is the full register.
        """
        return self._index.get(offset)

    def name_of(self, offset: int, width: int = 32) -> str:
        """Display name of what an access at ``offset`` touches (``UNKNOWN@0x...`` if none)."""
        hit = self._index.get(offset)
        if hit is None:
            return f"UNKNOWN@0x{offset:05x}"
        reg, part = hit
        if _norm_width(width) == 64 and reg.width == 64 and part is Part.LO:
            part = Part.FULL
        return reg.part_name(part)

    def decode(self, offset: int, value: int, width: int = 32) -> str:
        """``NAME = 0x... (FIELDS)``; ``width`` is 32/64 bits (4/8 bytes accepted too)."""
        return _decode(self._index, offset, value, width)

    def reset_values(self) -> dict[str, int]:
        """``{full_name: reset}`` for every register (64-bit registers as one value)."""
        return {r.full_name: r.reset for r in self.registers}

    def __repr__(self) -> str:
        return f"<RegMap {self.name}: {len(self.blocks)} blocks, {len(self.registers)} regs>"
