//! Unit tests of the shim protocol: round trips, the exact bytes older shims and engines speak,
//! and the rejection of frames that do not fit.

use super::*;

/// What the shim wrote to `exit.json` and the EXIT frame before [`ExitRecord`] existed:
/// `format!("{{\"exit_code\":{code},\"finished_at\":\"{finished_at}\",\"oom_killed\":{oom}}}")`.
const OLD_EXIT_JSON: &str =
    r#"{"exit_code":137,"finished_at":"2026-11-25T22:01:02.123456789Z","oom_killed":true}"#;

fn sample_exit() -> ExitRecord {
    ExitRecord {
        exit_code: 137,
        finished_at: "2026-11-25T22:01:02.123456789Z".into(),
        oom_killed: true,
    }
}

/// A header followed by `payload`, built by hand.
fn raw(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn every_frame() -> Vec<Frame> {
    vec![
        Frame::Stdin(b"typed\n".to_vec()),
        Frame::Stdin(Vec::new()),
        Frame::Stdout(b"hello".to_vec()),
        Frame::Stdout((0..=255).collect()),
        Frame::Stderr(b"oops\n".to_vec()),
        Frame::Exit(sample_exit()),
        Frame::Exit(ExitRecord::default()),
        Frame::Reply(Ok(())),
        Frame::Reply(Err("runc create failed: exec: \"x\": not found".into())),
        Frame::StdinClose,
        Frame::Resize {
            rows: 30,
            cols: 100,
        },
        Frame::Resize {
            rows: u16::MAX,
            cols: 0,
        },
        Frame::Start,
    ]
}

#[test]
fn every_frame_round_trips() {
    for frame in every_frame() {
        let bytes = frame.encode();
        let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(header.kind, frame.kind() as u8);
        assert_eq!(header.len, bytes.len() - HEADER_LEN);
        let back = Frame::<Vec<u8>>::decode(header.kind, bytes[HEADER_LEN..].to_vec()).unwrap();
        assert_eq!(back, frame);
        // And through the blocking reader.
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some(frame));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}

#[test]
fn a_stream_of_frames_reads_back_in_order() {
    let mut buf = Vec::new();
    for frame in every_frame() {
        frame.write_to(&mut buf).unwrap();
    }
    let mut r = &buf[..];
    for frame in every_frame() {
        assert_eq!(read_frame(&mut r).unwrap(), Some(frame));
    }
    assert_eq!(read_frame(&mut r).unwrap(), None);
}

#[test]
fn kinds_keep_their_numbers() {
    let kinds = [
        (Kind::Stdin, 0),
        (Kind::Stdout, 1),
        (Kind::Stderr, 2),
        (Kind::Exit, 3),
        (Kind::Reply, 4),
        (Kind::StdinClose, 5),
        (Kind::Resize, 6),
        (Kind::Start, 7),
    ];
    for (kind, byte) in kinds {
        assert_eq!(kind as u8, byte);
        assert_eq!(Kind::try_from(byte).unwrap(), kind);
    }
}

#[test]
fn exact_bytes_of_frames() {
    assert_eq!(
        Frame::Stdout(&b"hello"[..]).encode(),
        b"\x01\x00\x00\x00\x05hello"
    );
    assert_eq!(Frame::Stderr(&b"e"[..]).encode(), b"\x02\x00\x00\x00\x01e");
    assert_eq!(Frame::Stdin(&b"ab"[..]).encode(), b"\x00\x00\x00\x00\x02ab");
    assert_eq!(Frame::<&[u8]>::Start.encode(), b"\x07\x00\x00\x00\x00");
    assert_eq!(Frame::<&[u8]>::StdinClose.encode(), b"\x05\x00\x00\x00\x00");
    assert_eq!(
        Frame::<&[u8]>::Resize {
            rows: 30,
            cols: 100
        }
        .encode(),
        b"\x06\x00\x00\x00\x04\x00\x1e\x00\x64"
    );
    assert_eq!(
        Frame::<&[u8]>::Reply(Ok(())).encode(),
        b"\x04\x00\x00\x00\x02ok"
    );
    assert_eq!(
        Frame::<&[u8]>::Reply(Err("already started".into())).encode(),
        raw(4, b"error: already started")
    );
    assert_eq!(
        Frame::<&[u8]>::Exit(sample_exit()).encode(),
        raw(3, OLD_EXIT_JSON.as_bytes())
    );
}

#[test]
fn frames_from_an_older_peer_decode() {
    // As the engine built them: `(kind, payload)` with the resize payload by hand.
    let mut resize = 24u16.to_be_bytes().to_vec();
    resize.extend_from_slice(&80u16.to_be_bytes());
    let mut stream = raw(6, &resize);
    stream.extend(raw(7, b""));
    stream.extend(raw(0, b"input"));
    stream.extend(raw(5, b""));
    // As the shim built them.
    stream.extend(raw(4, b"ok"));
    stream.extend(raw(4, b"error: runc: no such file or directory"));
    stream.extend(raw(1, b"out"));
    stream.extend(raw(3, OLD_EXIT_JSON.as_bytes()));
    let mut r = &stream[..];
    let mut got = Vec::new();
    while let Some(f) = read_frame(&mut r).unwrap() {
        got.push(f);
    }
    assert_eq!(
        got,
        vec![
            Frame::Resize { rows: 24, cols: 80 },
            Frame::Start,
            Frame::Stdin(b"input".to_vec()),
            Frame::StdinClose,
            Frame::Reply(Ok(())),
            Frame::Reply(Err("runc: no such file or directory".into())),
            Frame::Stdout(b"out".to_vec()),
            Frame::Exit(sample_exit()),
        ]
    );
}

#[test]
fn exit_record_json_is_what_the_shim_always_wrote() {
    assert_eq!(sample_exit().to_json(), OLD_EXIT_JSON.as_bytes());
    assert_eq!(
        ExitRecord::from_json(OLD_EXIT_JSON.as_bytes()).unwrap(),
        sample_exit()
    );
    let zero = ExitRecord {
        exit_code: 0,
        finished_at: "2026-12-07T18:03:28.000000001Z".into(),
        oom_killed: false,
    };
    assert_eq!(
        zero.to_json(),
        br#"{"exit_code":0,"finished_at":"2026-12-07T18:03:28.000000001Z","oom_killed":false}"#
    );
}

#[test]
fn exit_record_json_is_read_leniently() {
    // Missing optional fields take defaults; unknown fields are ignored (a newer shim).
    assert_eq!(
        ExitRecord::from_json(br#"{"exit_code":3}"#).unwrap(),
        ExitRecord {
            exit_code: 3,
            ..Default::default()
        }
    );
    assert_eq!(
        ExitRecord::from_json(br#"{"exit_code":-1,"oom_killed":false,"extra":[1]}"#)
            .unwrap()
            .exit_code,
        -1
    );
    for bad in [
        &b""[..],
        b"{}",
        b"{\"exit_code\":\"1\"}",
        b"not json",
        b"{\"exit_code\":1",
    ] {
        let err = ExitRecord::from_json(bad).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Malformed {
                    kind: Kind::Exit,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_fatal());
    }
}

#[test]
fn exit_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ExitRecord::read_file(dir.path()),
        Err(ProtocolError::Io(_))
    ));
    sample_exit().write_file(dir.path()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(EXIT_FILE)).unwrap(),
        OLD_EXIT_JSON.as_bytes()
    );
    assert!(!dir.path().join("exit.json.tmp").exists());
    assert_eq!(ExitRecord::read_file(dir.path()).unwrap(), sample_exit());
}

#[test]
fn unknown_kinds_are_rejected_and_skipped() {
    for kind in [8u8, 42, 255] {
        let err = Frame::<Vec<u8>>::decode(kind, b"x".to_vec()).unwrap_err();
        assert!(matches!(err, ProtocolError::UnknownKind(k) if k == kind));
        assert!(!err.is_fatal());
    }
    // The payload of an unknown frame is consumed: the next frame still reads.
    let mut stream = raw(9, b"future");
    stream.extend(raw(1, b"next"));
    let mut r = &stream[..];
    assert!(matches!(
        read_frame(&mut r),
        Err(ProtocolError::UnknownKind(9))
    ));
    assert_eq!(
        read_frame(&mut r).unwrap(),
        Some(Frame::Stdout(b"next".to_vec()))
    );
}

#[test]
fn bad_resize_payloads_are_rejected() {
    for payload in [&b""[..], b"\x00", b"\x00\x18\x00", b"\x00\x18\x00\x50\x00"] {
        let err = Frame::<Vec<u8>>::decode(6, payload.to_vec()).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Malformed {
                    kind: Kind::Resize,
                    ..
                }
            ),
            "{payload:?}: {err:?}"
        );
        assert!(!err.is_fatal());
    }
}

#[test]
fn payloads_where_none_belong_are_rejected() {
    for kind in [Kind::Start, Kind::StdinClose] {
        let err = Frame::<Vec<u8>>::decode(kind as u8, b"x".to_vec()).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed { kind: k, .. } if k == kind));
    }
}

#[test]
fn bad_replies_are_rejected() {
    for payload in [&b""[..], b"OK", b"fine", b"\xff\xfe"] {
        let err = Frame::<Vec<u8>>::decode(4, payload.to_vec()).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Malformed {
                    kind: Kind::Reply,
                    ..
                }
            ),
            "{payload:?}: {err:?}"
        );
    }
    // The engine always trimmed what follows `error:`.
    assert_eq!(
        Frame::<Vec<u8>>::decode(4, b"error:  spaced out \n".to_vec()).unwrap(),
        Frame::Reply(Err("spaced out".into()))
    );
}

#[test]
fn truncated_frames_are_errors() {
    let buf = Frame::Stdout(&b"hello"[..]).encode();
    for cut in 1..buf.len() {
        let err = read_frame(&mut &buf[..cut]).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Truncated),
            "cut at {cut}: {err:?}"
        );
        assert!(err.is_fatal());
    }
}

#[test]
fn oversized_frames_are_refused() {
    let mut buf = vec![1u8];
    buf.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
    let err = read_frame(&mut &buf[..]).unwrap_err();
    assert!(matches!(err, ProtocolError::TooLarge(n) if n == MAX_FRAME + 1));
    assert!(err.is_fatal());
    let at_limit = [1u8, 0x00, 0x10, 0x00, 0x00];
    assert_eq!(Header::parse(&at_limit).unwrap().len, MAX_FRAME);
    assert!(Header::parse(&[1, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn data_payloads_move_into_the_frame() {
    let payload = vec![7u8; 4096];
    let ptr = payload.as_ptr();
    match Frame::<Vec<u8>>::decode(1, payload).unwrap() {
        Frame::Stdout(data) => assert_eq!(data.as_ptr(), ptr),
        other => panic!("{other:?}"),
    }
}
