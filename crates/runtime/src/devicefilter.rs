//! Device control on cgroup v2: compiles OCI device rules (`linux.resources.devices`) into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program (eBPF instructions, `struct bpf_insn`). Pure logic:
//! loading and attaching live in [`crate::cgroup_devices`].
//!
//! Semantics (those of the v1 devices controller as the rules are written into it one after
//! the other): everything is denied unless a rule allows it, and for every access bit
//! (`m`, `r`, `w`) of a request the LAST rule that matches the device and names that bit
//! decides. A request with several bits (an `O_RDWR` open asks for `r` and `w` at once) is
//! allowed only when every bit is. Type `a` (or no type) matches every device with every
//! access, whatever its numbers and access say; a missing or negative major/minor is a
//! wildcard; a missing access means `rwm`. Type `u` (unbuffered char) is a char device; `p`
//! (FIFO) rules are dropped, as the kernel never asks the devices controller about FIFOs.
//!
//! The program walks the rules backwards (last first). Per rule it checks type, major and
//! minor; an allow rule clears the bits it grants from the pending set (and allows once
//! nothing is pending), a deny rule denies when it names a pending bit. Whatever is still
//! pending at the end is denied. A rule that covers everything ends the walk.
//!
//! The context the kernel passes is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }`; `access_type` is `type | access << 16` with type `BPF_DEVCG_DEV_BLOCK` (1) or
//! `BPF_DEVCG_DEV_CHAR` (2) and access a mask of `BPF_DEVCG_ACC_MKNOD` (1), `_READ` (2),
//! `_WRITE` (4). The program returns 1 to allow, 0 to deny.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// `BPF_DEVCG_DEV_BLOCK`: the device type of a block device in the context.
pub const DEV_BLOCK: u32 = 1;
/// `BPF_DEVCG_DEV_CHAR`: the device type of a char device in the context.
pub const DEV_CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`.
pub const ACC_MKNOD: u32 = 1;
/// `BPF_DEVCG_ACC_READ`.
pub const ACC_READ: u32 = 2;
/// `BPF_DEVCG_ACC_WRITE`.
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The license the program is loaded with (it calls no GPL-only helper); runc's choice.
pub const LICENSE: &str = "Apache";

/// eBPF opcodes this module emits (class | op | source).
pub mod op {
    /// `BPF_LDX | BPF_MEM | BPF_W`: dst = *(u32 *)(src + off).
    pub const LDX_W: u8 = 0x61;
    /// `BPF_ALU | BPF_AND | BPF_K`: dst = (u32)(dst & imm).
    pub const AND32_IMM: u8 = 0x54;
    /// `BPF_ALU | BPF_RSH | BPF_K`: dst = (u32)dst >> imm.
    pub const RSH32_IMM: u8 = 0x74;
    /// `BPF_ALU | BPF_MOV | BPF_K`: dst = (u32)imm.
    pub const MOV32_IMM: u8 = 0xb4;
    /// `BPF_ALU | BPF_MOV | BPF_X`: dst = (u32)src.
    pub const MOV32_REG: u8 = 0xbc;
    /// `BPF_JMP | BPF_JNE | BPF_K`: if dst != (s64)imm goto pc + off.
    pub const JNE_IMM: u8 = 0x55;
    /// `BPF_JMP | BPF_JNE | BPF_X`: if dst != src goto pc + off.
    pub const JNE_REG: u8 = 0x5d;
    /// `BPF_JMP | BPF_JEQ | BPF_K`: if dst == (s64)imm goto pc + off.
    pub const JEQ_IMM: u8 = 0x15;
    /// `BPF_JMP | BPF_EXIT`: return r0.
    pub const EXIT: u8 = 0x95;
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10).
    pub src: u8,
    /// Signed offset (jumps: relative to the next instruction).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The instruction as the kernel reads it (`dst_reg:4, src_reg:4` in host bit order).
    pub fn encode(&self) -> u64 {
        let regs = if cfg!(target_endian = "little") {
            (self.dst & 0xf) | (self.src << 4)
        } else {
            (self.dst << 4) | (self.src & 0xf)
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        u64::from_ne_bytes([
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ])
    }
}

// Registers: r1 = context (then scratch), r2 = type, r3 = pending access, r4 = major,
// r5 = minor, r0 = verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Which devices a normalized rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Type `a`: every device, every access.
    Everything,
    /// One device type (`DEV_BLOCK` or `DEV_CHAR`) with optional numbers.
    Typed {
        dev_type: u32,
        major: Option<u32>,
        minor: Option<u32>,
    },
}

/// A rule reduced to what the program checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    scope: Scope,
    access: u32,
}

fn number(v: Option<i64>, what: &str, rule: &LinuxDeviceCgroup) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            Error::invalid(format!(
                "linux.resources.devices: {what} {n} of rule \"{rule}\" is out of range"
            ))
        }),
    }
}

fn access_mask(rule: &LinuxDeviceCgroup) -> Result<u32> {
    let Some(text) = rule.access() else {
        return Ok(ACC_ALL);
    };
    let mut mask = 0;
    for c in text.chars() {
        mask |= match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => {
                return Err(Error::invalid(format!(
                    "linux.resources.devices: invalid access {text:?} (only r, w and m)"
                )))
            }
        };
    }
    Ok(mask)
}

/// Normalizes one OCI rule; `None` for a rule that can never match (a FIFO, no access).
fn normalize(rule: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
    let dev_type = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => {
            return Ok(Some(Rule {
                allow: rule.allow(),
                scope: Scope::Everything,
                access: ACC_ALL,
            }))
        }
        LinuxDeviceType::B => DEV_BLOCK,
        LinuxDeviceType::C | LinuxDeviceType::U => DEV_CHAR,
        LinuxDeviceType::P => return Ok(None),
    };
    let major = number(rule.major(), "major", rule)?;
    let minor = number(rule.minor(), "minor", rule)?;
    let access = access_mask(rule)?;
    if access == 0 {
        return Ok(None);
    }
    Ok(Some(Rule {
        allow: rule.allow(),
        scope: Scope::Typed {
            dev_type,
            major,
            minor,
        },
        access,
    }))
}

/// Marker for "jump to the end of this rule's block", resolved when the block is done.
const TO_NEXT: i16 = i16::MIN;

/// Appends `if reg != value goto next` (a 64-bit compare: values above `i32::MAX` go through
/// r1, since an immediate would be sign-extended).
fn skip_unless_equal(block: &mut Vec<Insn>, reg: u8, value: u32) {
    match i32::try_from(value) {
        Ok(imm) => block.push(Insn::new(op::JNE_IMM, reg, 0, TO_NEXT, imm)),
        Err(_) => {
            block.push(Insn::new(op::MOV32_IMM, R1, 0, 0, value as i32));
            block.push(Insn::new(op::JNE_REG, reg, R1, TO_NEXT, 0));
        }
    }
}

fn verdict(block: &mut Vec<Insn>, allow: bool) {
    block.push(Insn::new(op::MOV32_IMM, R0, 0, 0, i32::from(allow)));
    block.push(Insn::new(op::EXIT, 0, 0, 0, 0));
}

fn rule_block(rule: &Rule) -> Vec<Insn> {
    let mut block = Vec::new();
    let Scope::Typed {
        dev_type,
        major,
        minor,
    } = rule.scope
    else {
        verdict(&mut block, rule.allow);
        return block;
    };
    skip_unless_equal(&mut block, R2, dev_type);
    if let Some(m) = major {
        skip_unless_equal(&mut block, R4, m);
    }
    if let Some(m) = minor {
        skip_unless_equal(&mut block, R5, m);
    }
    if rule.allow {
        // pending &= ~granted; if pending != 0 goto next; return 1
        block.push(Insn::new(op::AND32_IMM, R3, 0, 0, !(rule.access as i32)));
        block.push(Insn::new(op::JNE_IMM, R3, 0, TO_NEXT, 0));
        verdict(&mut block, true);
    } else {
        // if (pending & denied) == 0 goto next; return 0
        block.push(Insn::new(op::MOV32_REG, R1, R3, 0, 0));
        block.push(Insn::new(op::AND32_IMM, R1, 0, 0, rule.access as i32));
        block.push(Insn::new(op::JEQ_IMM, R1, 0, TO_NEXT, 0));
        verdict(&mut block, false);
    }
    let len = block.len();
    for (i, insn) in block.iter_mut().enumerate() {
        if insn.off == TO_NEXT {
            insn.off = (len - i - 1) as i16;
        }
    }
    block
}

/// Compiles the rules, in the order they would be written to a v1 cgroup, into the program.
/// Errors (Docker's/runc's "invalid" class) for an access other than r/w/m or a major/minor
/// above `u32::MAX`.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut normalized = Vec::with_capacity(rules.len());
    for rule in rules {
        if let Some(r) = normalize(rule)? {
            normalized.push(r);
        }
    }
    let mut prog = vec![
        Insn::new(op::LDX_W, R2, R1, 0, 0),
        Insn::new(op::AND32_IMM, R2, 0, 0, 0xffff),
        Insn::new(op::LDX_W, R3, R1, 0, 0),
        Insn::new(op::RSH32_IMM, R3, 0, 0, 16),
        Insn::new(op::LDX_W, R4, R1, 4, 0),
        Insn::new(op::LDX_W, R5, R1, 8, 0),
    ];
    for rule in normalized.iter().rev() {
        prog.extend(rule_block(rule));
        if rule.scope == Scope::Everything {
            // unconditional verdict: nothing before it can be reached
            return Ok(prog);
        }
    }
    verdict(&mut prog, false);
    Ok(prog)
}

/// The program in the kernel's layout, one `u64` per instruction.
pub fn encode(prog: &[Insn]) -> Vec<u64> {
    prog.iter().map(Insn::encode).collect()
}

/// The device rules every container gets after its own (as runc's specconv appends them):
/// mknod of anything, the default devices, ptys, /dev/console and /dev/net/tun.
pub fn allowed_devices() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType as T};
    let rule = |t: T, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(t)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("static device rule")
    };
    vec![
        rule(T::C, None, None, "m"),
        rule(T::B, None, None, "m"),
        rule(T::C, Some(1), Some(3), "rwm"),
        rule(T::C, Some(1), Some(8), "rwm"),
        rule(T::C, Some(1), Some(7), "rwm"),
        rule(T::C, Some(5), Some(0), "rwm"),
        rule(T::C, Some(1), Some(5), "rwm"),
        rule(T::C, Some(1), Some(9), "rwm"),
        rule(T::C, Some(136), None, "rwm"),
        rule(T::C, Some(5), Some(2), "rwm"),
        rule(T::C, Some(10), Some(200), "rwm"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        if let Some(a) = access {
            b = b.access(a);
        }
        b.build().unwrap()
    }

    /// Runs the program on a context, emulating exactly the opcodes this module emits, with
    /// the verifier's rules that matter here: only forward jumps inside the program, no
    /// register read before it is written, the context read at 0/4/8 only, r0 set at exit.
    fn run(prog: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut reg: [Option<u64>; 11] = [None; 11];
        reg[1] = Some(u64::MAX); // the context pointer: only usable as a load base
        let get = |reg: &[Option<u64>; 11], r: u8| -> u64 {
            reg[r as usize].unwrap_or_else(|| panic!("r{r} read before written"))
        };
        let mut pc = 0usize;
        let mut ctx_live = true;
        loop {
            let i = *prog.get(pc).expect("fell off the end of the program");
            pc += 1;
            let jump = |taken: bool, pc: &mut usize| {
                assert!(i.off >= 0, "backward jump");
                if taken {
                    *pc += i.off as usize;
                }
                assert!(*pc < prog.len(), "jump out of the program");
            };
            match i.code {
                op::LDX_W => {
                    assert_eq!(i.src, R1, "loads only from the context");
                    assert!(ctx_live, "context pointer was overwritten");
                    assert!([0, 4, 8].contains(&i.off), "bad context offset {}", i.off);
                    reg[i.dst as usize] = Some(u64::from(ctx[i.off as usize / 4]));
                }
                op::AND32_IMM => {
                    let v = get(&reg, i.dst) as u32 & i.imm as u32;
                    reg[i.dst as usize] = Some(u64::from(v));
                }
                op::RSH32_IMM => {
                    let v = (get(&reg, i.dst) as u32) >> i.imm;
                    reg[i.dst as usize] = Some(u64::from(v));
                }
                op::MOV32_IMM => reg[i.dst as usize] = Some(u64::from(i.imm as u32)),
                op::MOV32_REG => {
                    let v = get(&reg, i.src) as u32;
                    reg[i.dst as usize] = Some(u64::from(v));
                }
                op::JNE_IMM => {
                    let taken = get(&reg, i.dst) != i.imm as i64 as u64;
                    jump(taken, &mut pc);
                }
                op::JEQ_IMM => {
                    let taken = get(&reg, i.dst) == i.imm as i64 as u64;
                    jump(taken, &mut pc);
                }
                op::JNE_REG => {
                    let taken = get(&reg, i.dst) != get(&reg, i.src);
                    jump(taken, &mut pc);
                }
                op::EXIT => return get(&reg, R0),
                c => panic!("unexpected opcode {c:#x}"),
            }
            let writes = [
                op::LDX_W,
                op::AND32_IMM,
                op::RSH32_IMM,
                op::MOV32_IMM,
                op::MOV32_REG,
            ];
            if i.dst == R1 && writes.contains(&i.code) {
                ctx_live = false;
            }
        }
    }

    /// The rules evaluated directly: per access bit, the last matching rule decides; no
    /// match denies.
    fn reference(
        rules: &[LinuxDeviceCgroup],
        dev_type: u32,
        major: u32,
        minor: u32,
        access: u32,
    ) -> u64 {
        let num_matches = |want: Option<i64>, have: u32| match want {
            None => true,
            Some(n) if n < 0 => true,
            Some(n) => n == i64::from(have),
        };
        let bit_allowed = |bit: u32| -> bool {
            for r in rules.iter().rev() {
                let matches = match r.typ().unwrap_or_default() {
                    LinuxDeviceType::A => true,
                    LinuxDeviceType::P => false,
                    t => {
                        let want = if t == LinuxDeviceType::B {
                            DEV_BLOCK
                        } else {
                            DEV_CHAR
                        };
                        let acc = r.access().clone().unwrap_or_else(|| "rwm".into());
                        let has = match bit {
                            ACC_MKNOD => acc.contains('m'),
                            ACC_READ => acc.contains('r'),
                            _ => acc.contains('w'),
                        };
                        want == dev_type
                            && num_matches(r.major(), major)
                            && num_matches(r.minor(), minor)
                            && has
                    }
                };
                if matches {
                    return r.allow();
                }
            }
            false
        };
        let all = [ACC_MKNOD, ACC_READ, ACC_WRITE]
            .into_iter()
            .filter(|b| access & b != 0)
            .all(bit_allowed);
        u64::from(all)
    }

    const MAJORS: &[u32] = &[0, 1, 5, 8, 10, 136, 4095, 0x8000_0000, u32::MAX];
    const MINORS: &[u32] = &[0, 1, 3, 5, 7, 200, 0xfffff, 0x8000_0001, u32::MAX];

    /// Compares program and reference on every (type, major, minor, access) of the grid.
    fn check(rules: &[LinuxDeviceCgroup]) {
        let prog = compile(rules).unwrap();
        for dev_type in [DEV_BLOCK, DEV_CHAR, 0, 3] {
            for &major in MAJORS {
                for &minor in MINORS {
                    for access in 1..=ACC_ALL {
                        let got = run(&prog, dev_type | access << 16, major, minor);
                        let want = reference(rules, dev_type, major, minor, access);
                        assert_eq!(
                            got,
                            want,
                            "type {dev_type} {major}:{minor} access {access:#b} rules {:?}",
                            rules.iter().map(|r| r.to_string()).collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
    }

    use LinuxDeviceType::{A, B, C, P, U};

    fn deny_all() -> LinuxDeviceCgroup {
        rule(false, None, None, None, Some("rwm"))
    }

    #[test]
    fn docker_defaults_allow_only_the_listed_devices() {
        let mut rules = vec![deny_all()];
        rules.extend(super::allowed_devices());
        check(&rules);
        let prog = compile(&rules).unwrap();
        let ask = |t: u32, maj, min, acc: u32| run(&prog, t | acc << 16, maj, min);
        assert_eq!(ask(DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE), 1, "/dev/null rw");
        assert_eq!(ask(DEV_CHAR, 136, 4, ACC_READ | ACC_WRITE), 1, "a pty");
        assert_eq!(ask(DEV_BLOCK, 8, 0, ACC_READ), 0, "/dev/sda read");
        assert_eq!(
            ask(DEV_BLOCK, 8, 0, ACC_MKNOD),
            1,
            "mknod of any block device"
        );
        assert_eq!(ask(DEV_CHAR, 1, 1, ACC_READ), 0, "/dev/mem");
        assert_eq!(
            ask(DEV_CHAR, 1, 1, ACC_MKNOD | ACC_READ),
            0,
            "mknod+read of /dev/mem"
        );
        assert_eq!(ask(DEV_CHAR, 10, 200, ACC_WRITE), 1, "/dev/net/tun");
    }

    #[test]
    fn empty_rules_deny_everything() {
        let prog = compile(&[]).unwrap();
        assert_eq!(prog.len(), 8, "{prog:?}");
        check(&[]);
    }

    #[test]
    fn allow_all_and_deny_all_end_the_program() {
        // privileged: deny all, then allow all, then the defaults
        let mut rules = vec![deny_all(), rule(true, Some(A), None, None, Some("rwm"))];
        rules.extend(super::allowed_devices());
        check(&rules);
        assert_eq!(run(&compile(&rules).unwrap(), DEV_BLOCK | 2 << 16, 8, 0), 1);
        // an allow-all followed by a deny-all denies everything; nothing after the deny-all
        // is emitted
        let rules = [rule(true, Some(A), None, None, None), deny_all()];
        check(&rules);
        assert_eq!(compile(&rules).unwrap().len(), 8);
    }

    #[test]
    fn last_match_wins_and_access_bits_are_separate() {
        let sets: Vec<Vec<LinuxDeviceCgroup>> = vec![
            // allow /dev/null, deny /dev/zero (the root test's rules)
            vec![
                deny_all(),
                rule(true, Some(C), Some(1), Some(3), Some("rwm")),
                rule(false, Some(C), Some(1), Some(5), None),
            ],
            // a wildcard allow with a hole punched by a later deny
            vec![
                deny_all(),
                rule(true, Some(C), Some(1), None, Some("rwm")),
                rule(false, Some(C), Some(1), Some(5), Some("w")),
            ],
            // an earlier specific allow is overridden by a later wildcard deny
            vec![
                rule(true, Some(C), Some(1), Some(3), Some("rw")),
                rule(false, Some(C), None, None, Some("r")),
            ],
            // allow-all (blacklist) with exceptions, then an exception to the exception
            vec![
                rule(true, None, None, None, None),
                rule(false, Some(B), Some(8), None, Some("rw")),
                rule(true, Some(B), Some(8), Some(1), Some("r")),
            ],
            // split access over two rules
            vec![
                rule(true, Some(C), Some(1), Some(3), Some("r")),
                rule(true, Some(C), Some(1), None, Some("w")),
            ],
            // u is a char device, p never matches, "" grants nothing, -1 is a wildcard
            vec![
                rule(true, Some(U), Some(4), Some(-1), Some("rw")),
                rule(true, Some(P), None, None, Some("rwm")),
                rule(true, Some(B), Some(-1), Some(0), Some("")),
                rule(true, Some(B), Some(-1), Some(0), Some("m")),
            ],
            // numbers above i32::MAX
            vec![
                rule(
                    true,
                    Some(C),
                    Some(0x8000_0000),
                    Some(u32::MAX as i64),
                    Some("r"),
                ),
                rule(true, Some(B), Some(u32::MAX as i64), None, Some("rwm")),
            ],
        ];
        for rules in &sets {
            check(rules);
        }
        let prog = compile(&sets[0]).unwrap();
        assert_eq!(run(&prog, DEV_CHAR | ACC_READ << 16, 1, 5), 0);
        assert_eq!(run(&prog, DEV_CHAR | ACC_MKNOD << 16, 1, 5), 0);
        assert_eq!(run(&prog, DEV_CHAR | (ACC_READ | ACC_WRITE) << 16, 1, 3), 1);
        let prog = compile(&sets[1]).unwrap();
        assert_eq!(run(&prog, DEV_CHAR | ACC_READ << 16, 1, 5), 1);
        assert_eq!(run(&prog, DEV_CHAR | (ACC_READ | ACC_WRITE) << 16, 1, 5), 0);
    }

    /// A small deterministic generator (xorshift64*).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn pick<T: Copy>(&mut self, v: &[T]) -> T {
            v[(self.next() % v.len() as u64) as usize]
        }
    }

    #[test]
    fn random_rule_sets_match_the_reference() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let types = [None, Some(A), Some(B), Some(C), Some(U), Some(P)];
        let nums = [
            None,
            Some(-1),
            Some(0),
            Some(1),
            Some(3),
            Some(5),
            Some(8),
            Some(136),
        ];
        let access = [
            None,
            Some(""),
            Some("r"),
            Some("w"),
            Some("m"),
            Some("rw"),
            Some("wm"),
            Some("rwm"),
            Some("mr"),
        ];
        for _ in 0..300 {
            let n = g.next() % 8;
            let rules: Vec<_> = (0..n)
                .map(|_| {
                    let t = if g.next().is_multiple_of(4) {
                        g.pick(&types)
                    } else {
                        g.pick(&types[2..4])
                    };
                    rule(
                        !g.next().is_multiple_of(3),
                        t,
                        g.pick(&nums),
                        g.pick(&nums),
                        g.pick(&access),
                    )
                })
                .collect();
            check(&rules);
        }
    }

    #[test]
    fn bad_rules_are_refused() {
        let e = compile(&[rule(true, Some(C), Some(1), Some(3), Some("rx"))]).unwrap_err();
        assert!(e.to_string().contains("invalid access \"rx\""), "{e}");
        let e = compile(&[rule(true, Some(C), Some(1 << 32), None, None)]).unwrap_err();
        assert!(e.to_string().contains("major 4294967296"), "{e}");
        let e = compile(&[rule(true, Some(B), None, Some(1 << 40), None)]).unwrap_err();
        assert!(e.to_string().contains("minor"), "{e}");
    }

    #[test]
    fn encoding_matches_the_kernel_layout() {
        let i = Insn::new(op::JNE_REG, R4, R1, 3, -2);
        let b = i.encode().to_ne_bytes();
        assert_eq!(b[0], 0x5d);
        if cfg!(target_endian = "little") {
            assert_eq!(b[1], 0x14);
        }
        assert_eq!(i16::from_ne_bytes([b[2], b[3]]), 3);
        assert_eq!(i32::from_ne_bytes([b[4], b[5], b[6], b[7]]), -2);
    }
}
