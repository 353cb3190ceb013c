// Recurrent cell shapes shared by recurrent_step_forward and recurrent_step_backward. CELL is an
// `override` of both kernels: 0 RNN with tanh, 1 RNN with ReLU, 2 LSTM (gates i, f, g, o, as in
// PyTorch), 3 GRU with PyTorch's reset-after form (gates r, z, n), 4 GRU with the reset-before
// form of Cho et al. (2014): n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), two phases a step.

fn cell_gates(cell: u32) -> u32 {
    switch cell {
        case 2u: { return 4u; }
        case 3u, 4u: { return 3u; }
        default: { return 1u; }
    }
}

// Floats per hidden unit that the forward saves for the backward: LSTM i, f, g, o; GRU r, z, n
// and W_hn·h + b_hn (reset-before: r ⊙ h); RNN h'.
fn cell_saved(cell: u32) -> u32 {
    switch cell {
        case 2u, 3u, 4u: { return 4u; }
        default: { return 1u; }
    }
}
