//! timeloom inside a GPU application: the application owns the wgpu device; an LSTM trains on it
//! between "frames", and each frame the application renders a heatmap of the LSTM's hidden states
//! over time with its own render pipeline, reading the engine's output buffer directly (no copy,
//! no readback). The last frame is written to `runs/embed_in_app/frame.png`, and the counters
//! show that nothing was read back through the engine during the frames.
//!
//! ```text
//! cargo run --release --example embed_in_app
//! ```

#[path = "common/plot.rs"]
mod plot;

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use timeloom::nn::{Module, Recurrent};
use timeloom::wgpu;
use timeloom::{Device, Gpu, Optimizer, Rng, Tensor};

const T: usize = 48; // steps of the sequence: the heatmap's x axis
const H: usize = 32; // hidden units: its y axis
const W: u32 = 384;
const HT: u32 = 256;

const HEATMAP: &str = r#"
struct Dims { steps: u32, hidden: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> hidden: array<f32>; // [T, 1, H]: the LSTM's output

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle that covers the screen.
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let t = min(u32(pos.x / f32(384) * f32(dims.steps)), dims.steps - 1u);
    let j = min(u32(pos.y / f32(256) * f32(dims.hidden)), dims.hidden - 1u);
    let v = clamp(hidden[t * dims.hidden + j], -1.0, 1.0);
    // Blue for negative, white at zero, red for positive.
    return select(vec4<f32>(1.0 + v, 1.0 + v, 1.0, 1.0), vec4<f32>(1.0, 1.0 - v, 1.0 - v, 1.0), v > 0.0);
}
"#;

/// Runs `frames` frames; returns what the engine did during them. `quiet` skips printing and
/// the PNG (for the test).
pub fn run(frames: usize, quiet: bool) -> Result<timeloom::Stats, timeloom::Error> {
    // The application's own device, with WebGPU's default limits.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| timeloom::Error::NoAdapter {
                message: e.to_string(),
            })?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("host application"),
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))
    .map_err(|e| timeloom::Error::NoAdapter {
        message: e.to_string(),
    })?;
    if !quiet {
        println!("application device: {}", adapter.get_info().name);
    }

    // The engine on the application's device and queue.
    let gpu = Gpu::from_wgpu(device.clone(), queue.clone());
    let dev = Device::Gpu(gpu.clone());
    let lstm = Recurrent::lstm(1, H).build(&dev, &mut Rng::new(0))?;
    let head = timeloom::nn::Linear::new(&dev, H, 1, &mut Rng::new(1))?;
    let mut params = lstm.parameters();
    params.extend(head.parameters());
    let mut opt = Optimizer::adam(params, 1e-2);
    // The task: predict the next sample of a sine wave.
    let wave: Vec<f32> = (0..=T).map(|t| (t as f32 * 0.3).sin()).collect();
    let x = Tensor::from_slice(&dev, &wave[..T], &[T, 1, 1])?;
    let target = Tensor::from_slice(&dev, &wave[1..], &[T, 1])?;

    // The application's render pipeline and target.
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("heatmap"),
        source: wgpu::ShaderSource::Wgsl(HEATMAP.into()),
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("heatmap"),
        layout: None,
        vertex: wgpu::VertexState {
            module: &shader,
            entry_point: Some("vs"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: &shader,
            entry_point: Some("fs"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::TextureFormat::Rgba8Unorm.into())],
        }),
        primitive: Default::default(),
        depth_stencil: None,
        multisample: Default::default(),
        multiview_mask: None,
        cache: None,
    });
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("frame"),
        size: wgpu::Extent3d {
            width: W,
            height: HT,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&Default::default());
    let dims = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dims"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(
        &dims,
        0,
        &[T as u32, H as u32, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );

    let before = gpu.stats();
    for frame in 0..frames {
        // Train one step between frames: recorded, then submitted to the application's queue.
        opt.zero_grad();
        let out = lstm.forward(&x)?;
        let pred = head.forward(&out.reshape(&[T, H])?)?;
        let loss = timeloom::mse_loss(&pred, &target)?;
        loss.backward()?;
        opt.step()?;
        gpu.flush()?;
        // Render the hidden states straight from the engine's buffer.
        let (buffer, offset, size) = out.wgpu_buffer().expect("a contiguous GPU tensor");
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: dims.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &buffer,
                        offset,
                        size: wgpu::BufferSize::new(size),
                    }),
                },
            ],
        });
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("frame"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.draw(0..3, 0..1);
        }
        queue.submit([enc.finish()]);
        // The application's event loop polls its device; the engine never does.
        let _ = device.poll(wgpu::PollType::Poll);
        if !quiet && frame % 40 == 39 {
            println!(
                "frame {:>3}: rendered the hidden states of training step {}",
                frame + 1,
                frame + 1
            );
        }
    }
    let during = gpu.stats().since(&before);
    if quiet {
        return Ok(during);
    }
    println!(
        "during {frames} frames the engine recorded {} dispatches in {} submissions, read back {} bytes and blocked {} times",
        during.dispatches, during.submissions, during.bytes_downloaded, during.blocking_waits
    );

    // The application reads its last frame back itself and writes it out.
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("frame readback"),
        size: u64::from(W * HT * 4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &staging,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(W * 4),
                rows_per_image: None,
            },
        },
        wgpu::Extent3d {
            width: W,
            height: HT,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |_| ());
    let _ = device.poll(wgpu::PollType::wait_indefinitely());
    let mut canvas = plot::Canvas::new(W as usize, HT as usize);
    {
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| timeloom::Error::Gpu {
                message: e.to_string(),
            })?;
        for (px, rgba) in canvas.px.iter_mut().zip(data.chunks(4)) {
            *px = [rgba[0], rgba[1], rgba[2]];
        }
    }
    // Under the current directory, as every example writes.
    let dir = std::path::Path::new("runs/embed_in_app");
    plot::save(
        dir,
        "frame.png",
        plot::titled(
            &canvas,
            "embed_in_app: LSTM hidden states, drawn by the app's shader",
            "columns: timesteps; rows: hidden units; red: positive, blue: negative (white: 0)",
        ),
    )?;
    println!("wrote {}", dir.join("frame.png").display());
    let final_loss = {
        let out = lstm.forward(&x)?;
        timeloom::mse_loss(&head.forward(&out.reshape(&[T, H])?)?, &target)?
    };
    let after = gpu.stats();
    println!(
        "final training loss {:.5} (read after the frames: a blocking read, because we ask)",
        final_loss.read_blocking()?[0]
    );
    println!("{:?}", after);
    Ok(during)
}

/// timeloom inside a GPU application that owns the device: an LSTM trains between frames and the
/// application renders its hidden states; writes runs/embed_in_app/frame.png. No options.
#[derive(Parser, Debug)]
struct Cli {}

#[allow(dead_code)]
fn main() {
    cli::main(try_main)
}

fn try_main() -> Result<(), timeloom::Error> {
    cli::parse::<Cli>();
    run(120, false).map(|_| ())
}
