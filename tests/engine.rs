//! Public behaviour of the engine foundation: counters and pool reuse, error paths, and running on
//! a device the test (standing in for a host application) created itself.

use std::sync::{Mutex, MutexGuard, OnceLock};

#[path = "../examples/embed_in_app.rs"]
#[allow(dead_code)]
mod embed_in_app;

use timeloom::{Activation, Device, Error, Gpu, GpuOptions, Matmul, Tensor};

/// One test at a time. These tests make and drop devices and instances of their own while
/// others submit work, and NVIDIA's Vulkan driver (580.159, an H200) deadlocked on exactly that:
/// one thread in vkDestroyDevice, one in vkDestroyInstance waiting for the loader's lock, two in
/// vkQueueSubmit on the shared device, none returning (tools/gpu_check.sh found it; NOTES.md
/// has the stacks). Lavapipe never did. Run one at a time, each test still asserts what it
/// asserted.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one runs regardless.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The binary's shared device, for tests that do not assert counters.
fn shared() -> Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::new_blocking().expect("the tests need a GPU adapter; install mesa-vulkan-drivers")
    })
    .clone()
}

/// A device of its own, for tests that assert counters while other tests run in parallel.
fn private() -> Gpu {
    Gpu::new_blocking().expect("the tests need a GPU adapter")
}

fn seq(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
        .collect()
}

mod counters {
    use super::*;

    /// One "training-like" step: new inputs written in place, a Linear layer with ReLU, a squared
    /// norm, the scalar read back.
    fn step(x: &Tensor, w: &Tensor, b: &Tensor, data: &[f32]) -> f32 {
        x.write(data).unwrap();
        let y = Matmul::new(x, &w.t().unwrap())
            .bias(b)
            .activation(Activation::Relu)
            .compute()
            .unwrap();
        let loss = y.sum_squares_all().unwrap();
        loss.read_blocking().unwrap()[0]
    }

    #[test]
    fn a_steady_loop_allocates_nothing_after_its_first_step() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let x = Tensor::zeros(&dev, &[8, 33]).unwrap();
        let w = Tensor::from_slice(&dev, &seq(17 * 33, 0.01), &[17, 33]).unwrap();
        let b = Tensor::from_slice(&dev, &seq(17, 0.1), &[17]).unwrap();
        let first = step(&x, &w, &b, &seq(8 * 33, 0.02));
        let after_first = gpu.stats();
        let mut last = 0.0;
        for i in 0..5 {
            let before = gpu.stats();
            last = step(&x, &w, &b, &seq(8 * 33, 0.02 + i as f32 * 1e-3));
            let d = gpu.stats().since(&before);
            assert_eq!(d.submissions, 1, "one submission per step: {d:?}");
            assert_eq!(d.dispatches, 2, "matmul + reduction: {d:?}");
            assert_eq!(
                d.pool_misses, 0,
                "no new buffers after the first step: {d:?}"
            );
            assert_eq!(d.bind_groups_created, 0, "bind groups are reused: {d:?}");
            assert_eq!(d.pipeline_compiles, 0, "{d:?}");
        }
        let total = gpu.stats().since(&after_first);
        assert_eq!(
            total.bytes_resident, after_first.bytes_resident,
            "resident bytes stay flat"
        );
        assert!(first > 0.0 && last > 0.0 && first != last);
    }

    /// The rule the pool rests on: a buffer released while recorded work still reads it may be
    /// reused as a kernel's output, never as an upload's target (an upload lands before the
    /// batch's commands). Here x's buffer is released before the exp that reads it has run.
    #[test]
    fn an_upload_never_overwrites_a_buffer_that_pending_work_still_reads() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let xs = seq(1024, 0.01);
        let x = Tensor::from_slice(&dev, &xs, &[1024]).unwrap();
        gpu.flush().unwrap(); // x's upload is done: its buffer is an ordinary pooled one
        let y = x.exp().unwrap(); // recorded, not submitted
        drop(x);
        let z = Tensor::from_slice(&dev, &vec![7.0; 1024], &[1024]).unwrap();
        let want: Vec<f32> = xs.iter().map(|v| v.exp()).collect();
        let got = y.read_blocking().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6 * w.abs(), "y[{i}] = {g}, want {w}");
        }
        assert_eq!(z.read_blocking().unwrap(), vec![7.0; 1024]);
    }

    /// Reading several tensors at once costs one submission and one wait, whatever their
    /// number; views, empty tensors and host tensors among them read as they would alone.
    #[test]
    fn read_all_submits_once_and_waits_once() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &seq(12, 0.5), &[3, 4]).unwrap();
        let b = a.relu().unwrap();
        let view = a.transpose(0, 1).unwrap();
        let empty = Tensor::zeros(&dev, &[0, 4]).unwrap();
        let host = Tensor::from_slice(&Device::Cpu, &[1.0, 2.0], &[2]).unwrap();
        let want: Vec<Vec<f32>> = [&a, &b, &view, &empty, &host]
            .iter()
            .map(|t| t.read_blocking().unwrap())
            .collect();
        let c = b.scale(3.0).unwrap();
        let before = gpu.stats();
        let got = Tensor::read_all_blocking(&[&a, &b, &view, &empty, &host, &c]).unwrap();
        let d = gpu.stats().since(&before);
        assert_eq!((d.submissions, d.blocking_waits), (1, 1), "{d:?}");
        assert_eq!(&got[..5], &want[..]);
        assert_eq!(got[5], c.read_blocking().unwrap());
    }

    #[test]
    fn flush_submits_once_and_only_when_there_is_work() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &seq(64, 1.0), &[8, 8]).unwrap();
        let before = gpu.stats();
        let mut t = a.clone();
        for _ in 0..10 {
            t = t.relu().unwrap().add(&a).unwrap();
        }
        let recorded = gpu.stats().since(&before);
        assert_eq!(recorded.dispatches, 20);
        assert_eq!(recorded.submissions, 0, "recording submits nothing");
        gpu.flush().unwrap();
        gpu.flush().unwrap();
        let d = gpu.stats().since(&before);
        assert_eq!(d.submissions, 1, "two flushes, one with work: {d:?}");
        assert_eq!(d.passes, 1, "all dispatches in one compute pass: {d:?}");
        let v = t.read_blocking().unwrap();
        assert_eq!(
            gpu.stats().since(&before).submissions,
            2,
            "the read submits its copy"
        );
        assert_eq!(v.len(), 64);
        // Snapshots in the wrong order saturate at zero instead of panicking.
        assert_eq!(before.since(&gpu.stats()).submissions, 0);
    }

    #[test]
    fn each_kernel_compiles_once_per_device() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &seq(6, 1.0), &[2, 3]).unwrap();
        a.relu()
            .unwrap()
            .exp()
            .unwrap()
            .add(&a)
            .unwrap()
            .sum(1)
            .unwrap()
            .read_blocking()
            .unwrap();
        let compiled = gpu.stats().pipeline_compiles;
        a.tanh()
            .unwrap()
            .mul(&a)
            .unwrap()
            .max(0)
            .unwrap()
            .read_blocking()
            .unwrap();
        assert_eq!(
            gpu.stats().pipeline_compiles,
            compiled,
            "unary, binary and reduce are each one pipeline"
        );
    }

    /// The device-time profile times every dispatch once, by kernel and specialisation, and
    /// starts over when taken; a device made without it says how to get one.
    #[test]
    fn the_profile_times_every_dispatch_by_kernel() {
        let _serial = serial();
        let options = GpuOptions {
            profile: Some(true),
            autotune: Some(false),
            ..GpuOptions::default()
        };
        let gpu = pollster::block_on(Gpu::with_options(options)).unwrap();
        if !gpu.profiling() {
            let e = gpu.take_profile().unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }), "{e}");
            eprintln!("skipped: {e}");
            return;
        }
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &seq(97 * 61, 0.01), &[97, 61]).unwrap();
        let before = gpu.stats();
        let mut c = a.matmul(&a.t().unwrap()).unwrap();
        for _ in 0..3 {
            c = c.matmul(&c).unwrap().tanh().unwrap();
        }
        // Writing a tensor that recorded work reads submits that work: the profile carries on
        // over the next submission.
        a.write(&seq(97 * 61, 0.02)).unwrap();
        let out = c
            .sum_all()
            .unwrap()
            .add(&a.relu().unwrap().sum_all().unwrap())
            .unwrap();
        out.read_blocking().unwrap();
        assert!(gpu.stats().since(&before).submissions >= 2);
        let work = gpu.stats().since(&before);
        let profile = gpu.take_profile().unwrap();
        assert_eq!(profile.dispatches, work.dispatches, "{}", profile.table(20));
        let matmul: u64 = profile
            .kernels
            .iter()
            .filter(|k| k.kernel.starts_with("matmul"))
            .map(|k| k.dispatches)
            .sum();
        assert_eq!(matmul, 4, "{}", profile.table(20));
        assert!(profile.ms > 0.0, "{}", profile.table(20));
        let sum: f64 = profile.kernels.iter().map(|k| k.ms).sum();
        assert!((sum - profile.ms).abs() <= 1e-9 * sum.max(1.0));
        assert!(profile.table(2).contains("more)"));
        let again = gpu.take_profile().unwrap();
        assert_eq!((again.dispatches, again.kernels.len()), (0, 0));

        let plain = pollster::block_on(Gpu::with_options(GpuOptions {
            profile: Some(false),
            ..GpuOptions::default()
        }))
        .unwrap();
        let e = plain.take_profile().unwrap_err();
        assert!(e.to_string().contains("TIMELOOM_PROFILE"), "{e}");
    }
}

mod errors {
    use super::*;

    #[test]
    fn mismatched_shapes_are_shape_mismatch_errors_naming_the_argument() {
        let _serial = serial();
        let dev = Device::Gpu(shared());
        let a = Tensor::zeros(&dev, &[3, 4]).unwrap();
        let b = Tensor::zeros(&dev, &[5, 6]).unwrap();
        let e = a.matmul(&b).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ShapeMismatch {
                    op: "matmul",
                    arg: "b",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("4 rows"), "{e}");
        let e = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[2, 2]).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let bias = Tensor::zeros(&dev, &[7]).unwrap();
        let e = Matmul::new(&a, &a.t().unwrap())
            .bias(&bias)
            .compute()
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { arg: "bias", .. }), "{e}");
        let e = a.add(&b).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { op: "add", .. }), "{e}");
        let e = a.reshape(&[5]).unwrap_err();
        assert!(
            matches!(e, Error::ShapeMismatch { op: "reshape", .. }),
            "{e}"
        );
    }

    #[test]
    fn zero_size_dimensions_are_rejected_where_they_are_invalid() {
        let _serial = serial();
        let dev = Device::Gpu(shared());
        let empty = Tensor::zeros(&dev, &[0, 4]).unwrap();
        let w = Tensor::zeros(&dev, &[4, 2]).unwrap();
        assert!(matches!(
            empty.matmul(&w),
            Err(Error::InvalidArgument { op: "matmul", .. })
        ));
        assert!(matches!(
            empty.sum(0),
            Err(Error::InvalidArgument { op: "sum", .. })
        ));
        // Elementwise maps of an empty tensor are fine and empty.
        assert_eq!(
            empty.relu().unwrap().read_blocking().unwrap(),
            Vec::<f32>::new()
        );
        // An empty tensor whose other dimensions would overflow its strides is refused.
        assert!(matches!(
            Tensor::zeros(&Device::Cpu, &[0, 1 << 32, 1 << 32]),
            Err(Error::TooLarge { .. })
        ));
        assert_eq!(
            Tensor::zeros(&Device::Cpu, &[0, 1 << 16, 1 << 15])
                .unwrap()
                .numel(),
            0
        );
    }

    #[test]
    fn a_tensor_over_the_binding_limit_is_too_large() {
        let _serial = serial();
        // A device with WebGPU's default limits: 128 MiB per storage binding.
        let gpu = default_limits_gpu();
        let limit = gpu.limits().max_storage_buffer_binding_size;
        let floats = (limit / 4 + 1) as usize;
        let e = Tensor::zeros(&Device::Gpu(gpu), &[floats]).unwrap_err();
        match e {
            Error::TooLarge {
                bytes, limit: l, ..
            } => {
                assert_eq!(bytes, floats as u64 * 4);
                assert_eq!(l, limit);
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        // Past 2^32 elements the kernels cannot index at all.
        let e = Tensor::zeros(&Device::Cpu, &[1 << 20, 1 << 13]).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    }

    #[test]
    fn operands_on_different_devices_are_a_device_mismatch() {
        let _serial = serial();
        let g = Tensor::zeros(&Device::Gpu(shared()), &[2, 2]).unwrap();
        let c = Tensor::zeros(&Device::Cpu, &[2, 2]).unwrap();
        let e = g.matmul(&c).unwrap_err();
        assert!(matches!(e, Error::DeviceMismatch { .. }), "{e}");
        assert!(
            e.to_string().contains("to_device"),
            "the message says what to do: {e}"
        );
        let moved = c.to_device(&g.device()).unwrap();
        assert!(g.matmul(&moved).is_ok());
    }

    #[test]
    fn an_adapter_filter_that_matches_nothing_is_no_adapter() {
        let _serial = serial();
        let options = GpuOptions {
            adapter: Some("no-such-adapter-xyz".into()),
            ..GpuOptions::default()
        };
        let e = pollster::block_on(Gpu::with_options(options)).unwrap_err();
        match &e {
            Error::NoAdapter { message } => assert!(message.contains("found"), "{message}"),
            other => panic!("expected NoAdapter, got {other}"),
        }
    }

    #[test]
    fn out_of_range_axes_and_bad_views_are_invalid_arguments() {
        let _serial = serial();
        let t = Tensor::zeros(&Device::Cpu, &[2, 3]).unwrap();
        assert!(matches!(t.sum(2), Err(Error::InvalidArgument { .. })));
        assert!(matches!(
            t.transpose(0, 5),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            t.permute(&[0, 0]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            t.narrow(1, 2, 2),
            Err(Error::InvalidArgument { .. })
        ));
        let c = Tensor::zeros(&Device::Cpu, &[2, 2]).unwrap();
        let e = Matmul::new(&c, &c).accumulate_into(&c, 1.0).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { .. }),
            "aliasing output: {e}"
        );
    }
}

/// A device the test creates itself, as a host application would, with WebGPU's default limits.
fn default_limits_gpu() -> Gpu {
    let (device, queue) = app_device(wgpu_limits_default());
    Gpu::from_wgpu(device, queue)
}

fn wgpu_limits_default() -> timeloom::wgpu::Limits {
    timeloom::wgpu::Limits::default()
}

fn app_device(limits: timeloom::wgpu::Limits) -> (timeloom::wgpu::Device, timeloom::wgpu::Queue) {
    use timeloom::wgpu;
    pollster::block_on(async {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .expect("an adapter");
        adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("host app"),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .expect("a device")
    })
}

mod interop {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn runs_on_a_device_the_application_created() {
        let _serial = serial();
        let (device, queue) = app_device(timeloom::wgpu::Limits::default());
        let gpu = Gpu::from_wgpu(device.clone(), queue);
        assert!(!gpu.owns_device());
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        let c = a.matmul(&a.t().unwrap()).unwrap();

        // The application's event loop: polls its device until told to stop.
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (device, stop) = (device.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = device.poll(timeloom::wgpu::PollType::Poll);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        let v = pollster::block_on(c.read()).unwrap();
        stop.store(true, Ordering::Relaxed);
        poller.join().unwrap();
        assert_eq!(v, [5.0, 11.0, 11.0, 25.0]);
        assert_eq!(
            gpu.stats().blocking_waits,
            0,
            "the engine never blocked on the app's device"
        );
    }
}

mod zero_copy {
    use super::*;
    use timeloom::wgpu;

    #[test]
    fn an_application_buffer_is_a_tensor_and_a_tensor_is_a_buffer() {
        let _serial = serial();
        let (device, queue) = app_device(wgpu::Limits::default());
        let gpu = Gpu::from_wgpu(device.clone(), queue.clone());
        // The app's buffer: 4 floats of padding, then a 2×3 matrix.
        let data: Vec<f32> = vec![9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("app"),
            size: 40,
            usage,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buf, 0, bytemuck_cast(&data));
        let a = Tensor::from_wgpu_buffer(&gpu, &buf, 16, &[2, 3]).unwrap();
        let y = a.matmul(&a.t().unwrap()).unwrap(); // [[14, 32], [32, 77]]
        assert_eq!(y.read_blocking().unwrap(), [14.0, 32.0, 32.0, 77.0]);

        // Export: the app copies straight out of timeloom's buffer in its own encoder.
        let (src, offset, size) = y.wgpu_buffer().unwrap();
        assert_eq!(size, 16);
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("app readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.flush().unwrap();
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(&src, offset, &staging, 0, size);
        queue.submit([enc.finish()]);
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, |r| r.unwrap());
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let got: Vec<f32> = staging
            .slice(..)
            .get_mapped_range()
            .unwrap()
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(got, [14.0, 32.0, 32.0, 77.0]);

        // Misuse is a typed error.
        let bad = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: false,
        });
        assert!(matches!(
            Tensor::from_wgpu_buffer(&gpu, &bad, 0, &[4]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            Tensor::from_wgpu_buffer(&gpu, &buf, 2, &[1]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            Tensor::from_wgpu_buffer(&gpu, &buf, 16, &[7]),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    fn bytemuck_cast(v: &[f32]) -> &[u8] {
        // SAFETY: f32 has no padding and any byte pattern of it is a valid u8 sequence.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }
}

mod faults {
    use super::*;
    use timeloom::nn::{Module, Recurrent};
    use timeloom::{Optimizer, Rng};

    #[test]
    fn a_destroyed_device_is_device_lost_at_the_next_call() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &[1.0, 2.0], &[2]).unwrap();
        a.relu().unwrap().read_blocking().unwrap();
        gpu.device().destroy();
        let _ = gpu.device().poll(timeloom::wgpu::PollType::Poll);
        let e = a.relu().and_then(|t| t.read_blocking());
        assert!(matches!(e, Err(Error::DeviceLost { .. })), "{e:?}");
        // And it stays lost, without panics.
        assert!(matches!(
            Tensor::zeros(&dev, &[3]),
            Err(Error::DeviceLost { .. })
        ));
    }

    #[test]
    fn two_threads_recording_on_one_gpu_get_correct_results() {
        let _serial = serial();
        let gpu = shared();
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let dev = Device::Gpu(gpu.clone());
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let n = 7 + k + i;
                        let a: Vec<f32> = (0..n * n).map(|v| ((v + k) % 5) as f32).collect();
                        let t = Tensor::from_slice(&dev, &a, &[n, n]).unwrap();
                        let got = t
                            .matmul(&t)
                            .unwrap()
                            .sum_all()
                            .unwrap()
                            .read_blocking()
                            .unwrap()[0];
                        let c = Tensor::from_slice(&Device::Cpu, &a, &[n, n]).unwrap();
                        let want = c
                            .matmul(&c)
                            .unwrap()
                            .sum_all()
                            .unwrap()
                            .read_blocking()
                            .unwrap()[0];
                        assert_eq!(got, want, "thread {k}, n = {n}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn check_finite_names_the_first_bad_element_and_its_op() {
        let _serial = serial();
        let dev = Device::Gpu(shared());
        let w = Tensor::from_slice(&dev, &[1.0, -1.0, 2.0], &[3])
            .unwrap()
            .requires_grad();
        let y = w.log().unwrap(); // log(−1) = NaN
        let e = y.check_finite("log of the weights").unwrap_err();
        match e {
            Error::NonFinite {
                index, producer, ..
            } => {
                assert_eq!(index, 1);
                assert_eq!(producer, "unary");
            }
            other => panic!("expected NonFinite, got {other}"),
        }
        assert!(w.check_finite("weights").is_ok());
    }

    #[test]
    fn two_thousand_lstm_steps_keep_resident_memory_flat() {
        let _serial = serial();
        let gpu = private();
        let dev = Device::Gpu(gpu.clone());
        let model = Recurrent::lstm(3, 8).build(&dev, &mut Rng::new(0)).unwrap();
        let mut opt = Optimizer::adam(model.parameters(), 1e-2).clip_grad_norm(1.0);
        let x = Tensor::from_slice(&dev, &Rng::new(1).normals(6 * 2 * 3), &[6, 2, 3]).unwrap();
        let mut resident = Vec::new();
        for step in 0..2000 {
            opt.zero_grad();
            let loss = model
                .forward(&x)
                .unwrap()
                .square()
                .unwrap()
                .sum_all()
                .unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
            if step % 50 == 49 {
                loss.read_blocking().unwrap();
                resident.push(gpu.stats().bytes_resident);
            }
        }
        let settled = resident[1];
        assert!(
            resident.iter().skip(1).all(|&b| b == settled),
            "resident bytes drift: {resident:?}"
        );
    }
}

mod host_application {
    /// The application renders every frame from the engine's output buffer while the engine
    /// trains on the same queue: the engine never blocks on the device and reads nothing back.
    #[test]
    fn training_between_render_passes_never_blocks_the_host() {
        let _serial = super::serial();
        let during = super::embed_in_app::run(6, true).unwrap();
        assert_eq!(during.blocking_waits, 0, "{during:?}");
        assert_eq!(during.bytes_downloaded, 0, "{during:?}");
        assert_eq!(
            during.submissions, 6,
            "one submission per frame: {during:?}"
        );
    }
}

mod limits {
    use super::*;
    use timeloom::nn::{Module, Recurrent};
    use timeloom::Rng;

    /// A device with the downlevel defaults (4 storage buffers per stage): what fits runs, what
    /// does not is `Unsupported` naming the limit, never a wgpu panic.
    #[test]
    fn a_downlevel_device_runs_what_fits_and_names_the_limit_otherwise() {
        let _serial = serial();
        let (device, queue) = app_device(timeloom::wgpu::Limits::downlevel_defaults());
        let gpu = Gpu::from_wgpu(device, queue);
        let dev = Device::Gpu(gpu.clone());
        let a = Tensor::from_slice(&dev, &seq(12, 0.5), &[3, 4]).unwrap();
        let y = a
            .matmul(&a.t().unwrap())
            .unwrap()
            .relu()
            .unwrap()
            .sum_all()
            .unwrap();
        let cpu = Tensor::from_slice(&Device::Cpu, &seq(12, 0.5), &[3, 4]).unwrap();
        let want = cpu
            .matmul(&cpu.t().unwrap())
            .unwrap()
            .relu()
            .unwrap()
            .sum_all()
            .unwrap();
        assert_eq!(y.read_blocking().unwrap(), want.read_blocking().unwrap());
        let lstm = Recurrent::lstm(2, 3).build(&dev, &mut Rng::new(0)).unwrap();
        let x = Tensor::zeros(&dev, &[4, 1, 2]).unwrap();
        match lstm.forward(&x) {
            Err(Error::Unsupported { message, .. }) => {
                assert!(
                    message.contains("max_storage_buffers_per_shader_stage"),
                    "{message}"
                )
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        // The device is still usable afterwards.
        assert!(a.relu().unwrap().read_blocking().is_ok());
    }
}

mod external_lifetime {
    use super::*;
    use timeloom::wgpu;

    /// Wrapping the same application buffer again reuses its bind group; once the last tensor
    /// that wraps it drops, timeloom keeps no reference to it.
    #[test]
    fn wrapped_buffers_reuse_bind_groups_and_are_released() {
        let _serial = serial();
        let (device, queue) = app_device(wgpu::Limits::default());
        let gpu = Gpu::from_wgpu(device.clone(), queue);
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 64,
            usage,
            mapped_at_creation: false,
        });
        let frame = || {
            let t = Tensor::from_wgpu_buffer(&gpu, &buf, 0, &[16]).unwrap();
            let y = t.relu().unwrap();
            gpu.flush().unwrap();
            (t, y)
        };
        let keep = frame();
        frame();
        let before = gpu.stats();
        let again = frame();
        assert_eq!(
            gpu.stats().since(&before).bind_groups_created,
            0,
            "the same buffer, the same bind group"
        );
        assert!(
            matches!(keep.0.write(&[0.0; 16]), Err(Error::InvalidArgument { .. })),
            "no COPY_DST: a typed error"
        );
        drop((keep, again));
        let e = Tensor::from_wgpu_buffer(&gpu, &buf, u64::MAX - 3, &[4]).unwrap_err();
        assert!(
            matches!(e, Error::ShapeMismatch { .. }),
            "an overflowing offset is an error: {e}"
        );
    }
}

mod tuning_cache {
    use super::*;

    /// Tiles tuned by one device are remembered on disk for the next on this adapter: its
    /// first matmul tunes nothing (one wait: the read) and picks the same tiles; a file with a
    /// tile the engine would not choose, or a corrupt one, is ignored, tuned over and replaced.
    #[test]
    fn a_second_device_reuses_tuned_tiles_and_distrusts_the_file() {
        let _serial = serial();
        let dir = std::env::temp_dir().join(format!("timeloom-tuning-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            pollster::block_on(Gpu::with_options(GpuOptions {
                tuning_cache: Some(dir.clone()),
                ..GpuOptions::default()
            }))
            .unwrap()
        };
        // Blocking waits of a first 128³ matmul and its read on a fresh device.
        let first_matmul = |g: &Gpu| -> u64 {
            let dev = Device::Gpu(g.clone());
            let a = Tensor::from_slice(&dev, &seq(128 * 128, 0.01), &[128, 128]).unwrap();
            let before = g.stats().blocking_waits;
            a.matmul(&a).unwrap().read_blocking().unwrap();
            g.stats().blocking_waits - before
        };
        let first = open();
        let tuned = first_matmul(&first);
        assert!(tuned > 1, "the first device tunes: {tuned} waits");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "one file for the adapter: {files:?}");
        let path = &files[0];
        let good = std::fs::read_to_string(path).unwrap();

        let second = open();
        assert_eq!(first_matmul(&second), 1, "the second device tunes nothing");
        assert_eq!(
            timeloom::diagnostics::matmul_tiles(&first),
            timeloom::diagnostics::matmul_tiles(&second)
        );

        // Every value of the file set to 7: well formed, for this adapter, but no tile the
        // engine has; then plain garbage. Each time the device tunes again and rewrites it.
        let foreign: String = good
            .lines()
            .map(|l| match l.split_once(' ') {
                Some(("matmul", rest)) => {
                    let mut w = rest.split_whitespace();
                    let class = w.next().unwrap();
                    let pairs: Vec<String> = w
                        .map(|p| format!("{}=7", p.split_once('=').unwrap().0))
                        .collect();
                    format!("matmul {class} {}\n", pairs.join(" "))
                }
                _ => format!("{l}\n"),
            })
            .collect();
        assert_ne!(foreign, good);
        for bad in [foreign.as_bytes(), b"\x00\x01 not a tuning file".as_slice()] {
            std::fs::write(path, bad).unwrap();
            let g = open();
            assert!(first_matmul(&g) > 1, "an untrusted file is tuned over");
            // Replaced by a good file (the timing may pick other tiles on a noisy machine).
            let now = std::fs::read_to_string(path).unwrap();
            assert!(
                now.lines().take(2).eq(good.lines().take(2))
                    && now.contains("\nmatmul ")
                    && !now.contains("=7"),
                "{now}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
