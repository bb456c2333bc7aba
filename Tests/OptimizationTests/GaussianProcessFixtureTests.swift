import Foundation
import Testing
@testable import Optimization

/// Values computed by BoTorch 0.18.1 / GPyTorch 1.15.2 (torch 2.13.0+cpu, float64) with this script:
///
///     X = torch.tensor([[0.1, -0.8], [0.5, 0.3], [1.2, -0.2], [1.9, 0.9], [0.8, 0.7], [1.5, -0.6]])
///     Y = torch.tensor([[0.3], [1.1], [-0.4], [2.0], [0.9], [-1.2]])
///     bounds = torch.tensor([[0.0, -1.0], [2.0, 1.0]])
///     covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=2, lengthscale_prior=GammaPrior(3.0, 6.0)),
///                         outputscale_prior=GammaPrior(2.0, 0.15))
///     lik = GaussianLikelihood(noise_prior=GammaPrior(1.1, 0.05), noise_constraint=GreaterThan(1e-6))
///     m = SingleTaskGP(X, Y, covar_module=covar, likelihood=lik,
///                      input_transform=Normalize(2, bounds=bounds), outcome_transform=Standardize(1))
///     m.covar_module.base_kernel.lengthscale = torch.tensor([[0.4, 0.7]])
///     m.covar_module.outputscale = torch.tensor(1.5); m.likelihood.noise = torch.tensor([0.02])
///     m.mean_module.constant = torch.tensor(0.1)
///     mll = ExactMarginalLogLikelihood(m.likelihood, m); m.train()
///     print(mll(m(*m.train_inputs), m.train_targets).item() * 6)      # log likelihood + log priors
///     m.eval(); post = m.posterior(torch.tensor([[0.3, 0.0], [1.7, 0.5], [1.0, -1.0]]))
///     print(post.mean.flatten().tolist(), post.distribution.covariance_matrix.tolist())
@Suite("Gaussian process against a BoTorch fixture")
struct GaussianProcessFixtureTests {
    @Test("log posterior and joint posterior equal BoTorch's classic SingleTaskGP")
    func matchesBoTorch() throws {
        let x = try Matrix([[0.1, -0.8], [0.5, 0.3], [1.2, -0.2], [1.9, 0.9], [0.8, 0.7], [1.5, -0.6]])
        let data = try GPTrainingSet(x: x, y: [0.3, 1.1, -0.4, 2.0, 0.9, -1.2], lowerBounds: [0, -1], upperBounds: [2, 1])
        let h = GPHyperparameters(lengthscales: [0.4, 0.7], outputscale: 1.5, noise: 0.02, mean: 0.1)
        let logPosterior = try data.logMarginalLikelihood(h).value + GPPriors.classic.logDensity(h).value
        #expect(abs(logPosterior - -14.571647772481704) < 1e-9)

        let gp = try GaussianProcess(trainingSet: data, hyperparameters: h)
        let p = try gp.posterior(at: Matrix([[0.3, 0.0], [1.7, 0.5], [1.0, -1.0]]))
        let mean = [0.9557188901978773, 1.1347661267726747, -0.7418734247232417]
        let cov = [0.12599915750889168, 0.007005009748898624, -0.016460021632620732,
                   0.007005009748898624, 0.22523709221923635, -0.11322750340699121,
                   -0.016460021632620732, -0.11322750340699121, 0.6353707692533049]
        #expect(NaiveReference.maxAbsDifference(p.mean, mean) < 1e-10)
        #expect(NaiveReference.maxAbsDifference(p.covariance.elements, cov) < 1e-10)
    }
}
